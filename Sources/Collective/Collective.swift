/// The collective operations dtrain needs; see Communicator.swift.

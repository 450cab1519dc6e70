// The symmetric eigendecomposition A = Q·diag(λ)·Qᵀ through LAPACK's `dsyevd` (divide and conquer), the only
// LAPACK call in the project. OpenBLAS ships LAPACK; only this module touches it.
import CBLAS

/// An error LAPACK reported (`info` ≠ 0).
public struct LAPACKError: Error, CustomStringConvertible {
    public let routine: String, info: Int
    public var description: String { "\(routine) failed with info = \(info)" }
}

/// Eigenvalues (ascending) and orthonormal eigenvectors of the symmetric (n, n) matrix `matrix` (row-major; only
/// its symmetry is assumed, both triangles are read as equal). Returns `values` (n) and `vectors` (n, n) row-major
/// with eigenvector i in **row** i. The sign of each eigenvector is arbitrary (LAPACK's choice).
public func symmetricEigen(_ matrix: [Double], n: Int) throws -> (values: [Double], vectors: [Double]) {
    precondition(n >= 1 && matrix.count == n * n, "symmetricEigen: \(matrix.count) elements, expected \(n)×\(n)")
    // LAPACK is column-major: the row-major symmetric matrix is its own transpose, and the column-major output
    // (eigenvector i in column i) read row-major has eigenvector i in row i.
    var a = matrix
    var w = [Double](repeating: 0, count: n)
    var jobz = Int8(UInt8(ascii: "V")), uplo = Int8(UInt8(ascii: "L"))
    var nn = Int32(n), lda = Int32(n), info: Int32 = 0
    // Workspace query, then the solve.
    var workSize = 0.0, iworkSize: Int32 = 0, query: Int32 = -1
    dsyevd_(&jobz, &uplo, &nn, &a, &lda, &w, &workSize, &query, &iworkSize, &query, &info)
    guard info == 0 else { throw LAPACKError(routine: "dsyevd (workspace query)", info: Int(info)) }
    var lwork = Int32(workSize.rounded(.up)), liwork = iworkSize
    var work = [Double](repeating: 0, count: Int(lwork)), iwork = [Int32](repeating: 0, count: Int(liwork))
    dsyevd_(&jobz, &uplo, &nn, &a, &lda, &w, &work, &lwork, &iwork, &liwork, &info)
    guard info == 0 else { throw LAPACKError(routine: "dsyevd", info: Int(info)) }
    return (w, a)
}

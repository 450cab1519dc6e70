// The system zlib (gzip decompression, CRC-32) for Swift. zlib's init functions are macros that pass the library
// version and the z_stream size to the real entry points, and Swift cannot call macros; each wrapper below
// re-exports one under its C name.
#ifndef DTRAIN_CZLIB_H
#define DTRAIN_CZLIB_H
#include <zlib.h>

/// inflateInit2(strm, windowBits): windowBits 8…15 for a zlib stream, −8…−15 for raw DEFLATE, +16 for gzip only,
/// +32 to detect zlib or gzip.
static inline int dtrain_inflateInit2(z_streamp strm, int windowBits)
    __attribute__((swift_name("inflateInit2(_:_:)")));
static inline int dtrain_inflateInit2(z_streamp strm, int windowBits) { return inflateInit2(strm, windowBits); }

#endif

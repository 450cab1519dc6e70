// The one place that calls BLAS. Everything above Tensor multiplies matrices through `gemm`.
import CBLAS
import RealModule

/// Whether a matrix operand is used as stored or transposed (row-major storage throughout).
public enum Transpose: Sendable {
    case none, transposed
    @inlinable var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// Float or Double: the element types the numerical code is written for. Float is the training type;
/// Double backs the finite-difference checks and the tight reference-vector comparisons.
public protocol BLASScalar: BinaryFloatingPoint & Real & Sendable where Self.RawSignificand: FixedWidthInteger {
    /// C = alpha·op(A)·op(B) + beta·C, row-major. op(A): (m, k), op(B): (k, n), C: (m, n).
    static func gemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Self,
                     a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    /// C = alpha·A·Aᵀ + beta·C on the upper triangle of C (n, n), row-major, A: (n, k). The strict lower
    /// triangle of C is left untouched.
    static func syrkUpper(n: Int, k: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int, beta: Self,
                          c: UnsafeMutablePointer<Self>, ldc: Int)
    /// y += alpha·x over `count` contiguous elements.
    static func axpy(count: Int, alpha: Self, x: UnsafePointer<Self>, y: UnsafeMutablePointer<Self>)
    /// Σ x_i·y_i over `count` contiguous elements.
    static func dot(count: Int, x: UnsafePointer<Self>, y: UnsafePointer<Self>) -> Self
}

extension Float: BLASScalar {
    @inlinable
    public static func gemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Float,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas, blasint(m), blasint(n), blasint(k), alpha,
                    a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
    @inlinable
    public static func syrkUpper(n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int, beta: Float,
                                 c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, blasint(n), blasint(k), alpha, a, blasint(lda),
                    beta, c, blasint(ldc))
    }
    @inlinable
    public static func axpy(count: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(blasint(count), alpha, x, 1, y, 1)
    }
    @inlinable
    public static func dot(count: Int, x: UnsafePointer<Float>, y: UnsafePointer<Float>) -> Float {
        cblas_sdot(blasint(count), x, 1, y, 1)
    }
}

extension Double: BLASScalar {
    @inlinable
    public static func gemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Double,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, transA.cblas, transB.cblas, blasint(m), blasint(n), blasint(k), alpha,
                    a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
    @inlinable
    public static func syrkUpper(n: Int, k: Int, alpha: Double, a: UnsafePointer<Double>, lda: Int, beta: Double,
                                 c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, blasint(n), blasint(k), alpha, a, blasint(lda),
                    beta, c, blasint(ldc))
    }
    @inlinable
    public static func axpy(count: Int, alpha: Double, x: UnsafePointer<Double>, y: UnsafeMutablePointer<Double>) {
        cblas_daxpy(blasint(count), alpha, x, 1, y, 1)
    }
    @inlinable
    public static func dot(count: Int, x: UnsafePointer<Double>, y: UnsafePointer<Double>) -> Double {
        cblas_ddot(blasint(count), x, 1, y, 1)
    }
}

/// C = alpha·op(A)·op(B) + beta·C for row-major matrices; see `BLASScalar.gemm`.
@inlinable
public func gemm<T: BLASScalar>(_ transA: Transpose = .none, _ transB: Transpose = .none, m: Int, n: Int, k: Int,
                                alpha: T = 1, a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
                                beta: T = 0, c: UnsafeMutablePointer<T>, ldc: Int) {
    precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative shape m=\(m) n=\(n) k=\(k)")
    if m == 0 || n == 0 { return }
    T.gemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
           beta: beta, c: c, ldc: ldc)
}

/// C = alpha·A·Aᵀ + beta·C for a row-major A (n, k), written on the upper triangle of C (n, n) only (half the
/// flops of the gemm A·Aᵀ); see `BLASScalar.syrkUpper`.
@inlinable
public func syrkUpper<T: BLASScalar>(n: Int, k: Int, alpha: T = 1, a: UnsafePointer<T>, lda: Int, beta: T = 0,
                                     c: UnsafeMutablePointer<T>, ldc: Int) {
    precondition(n >= 0 && k >= 0, "syrkUpper: negative shape n=\(n) k=\(k)")
    if n == 0 { return }
    T.syrkUpper(n: n, k: k, alpha: alpha, a: a, lda: lda, beta: beta, c: c, ldc: ldc)
}

/// OpenBLAS's own thread pool: one thread per rank unless the user asks otherwise.
public enum BLASThreads {
    /// Sets the number of threads OpenBLAS uses for each call.
    public static func set(_ count: Int) {
        precondition(count >= 1, "BLAS threads must be >= 1, got \(count)")
        openblas_set_num_threads(Int32(count))
    }
    /// The number of threads OpenBLAS will use.
    public static var current: Int { Int(openblas_get_num_threads()) }
    /// The OpenBLAS build string (version, core type).
    public static var configuration: String {
        guard let c = openblas_get_config() else { return "OpenBLAS" }
        return String(cString: c)
    }
}

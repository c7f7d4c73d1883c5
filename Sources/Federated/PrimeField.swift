/// Integers modulo a prime below 2^31, so a product fits in 64 bits. Constants made with `init(_:)`
/// carry no modulus yet and take the modulus of the value they are combined with, which lets the
/// generic `MessageModel` run unchanged modulo any prime.
public struct ModPrime: CoefficientField, Equatable {
    public let value: UInt64
    public let modulus: UInt64
    private let constant: Int64

    public init(_ value: Int) {
        self.value = 0
        self.modulus = 0
        self.constant = Int64(value)
    }

    public init(_ value: Int, modulus: UInt64) {
        let m = Int64(modulus)
        self.value = UInt64(((Int64(value) % m) + m) % m)
        self.modulus = modulus
        self.constant = 0
    }

    /// n / d reduced modulo p; nil when p divides d.
    public init?(numerator: Int, denominator: Int, modulus: UInt64) {
        let d = ModPrime(denominator, modulus: modulus)
        guard d.value != 0 else { return nil }
        self = ModPrime(numerator, modulus: modulus) / d
    }

    private static func bind(_ a: ModPrime, _ b: ModPrime) -> (UInt64, UInt64, UInt64) {
        let p = a.modulus != 0 ? a.modulus : b.modulus
        precondition(p != 0, "dividing two constants that carry no modulus")
        let x = a.modulus != 0 ? a.value : ModPrime(Int(a.constant), modulus: p).value
        let y = b.modulus != 0 ? b.value : ModPrime(Int(b.constant), modulus: p).value
        return (x, y, p)
    }

    private init(raw: UInt64, modulus: UInt64) {
        value = raw
        self.modulus = modulus
        constant = 0
    }

    private var isConstant: Bool { modulus == 0 }

    public static func + (a: ModPrime, b: ModPrime) -> ModPrime {
        if a.isConstant && b.isConstant { return ModPrime(Int(a.constant + b.constant)) }
        let (x, y, p) = bind(a, b)
        return ModPrime(raw: (x + y) % p, modulus: p)
    }

    public static func - (a: ModPrime, b: ModPrime) -> ModPrime {
        if a.isConstant && b.isConstant { return ModPrime(Int(a.constant - b.constant)) }
        let (x, y, p) = bind(a, b)
        return ModPrime(raw: (x + p - y) % p, modulus: p)
    }

    public static func * (a: ModPrime, b: ModPrime) -> ModPrime {
        if a.isConstant && b.isConstant { return ModPrime(Int(a.constant * b.constant)) }
        let (x, y, p) = bind(a, b)
        return ModPrime(raw: x * y % p, modulus: p)
    }

    /// Division by zero gives zero; callers check denominators first.
    public static func / (a: ModPrime, b: ModPrime) -> ModPrime {
        let (x, y, p) = bind(a, b)
        return ModPrime(raw: x * PrimeArithmetic.inverse(y, p) % p, modulus: p)
    }
}

enum PrimeArithmetic {
    static func power(_ base: UInt64, _ exponent: UInt64, _ p: UInt64) -> UInt64 {
        var result: UInt64 = 1, b = base % p, e = exponent
        while e > 0 {
            if e & 1 == 1 { result = result * b % p }
            b = b * b % p
            e >>= 1
        }
        return result
    }

    static func inverse(_ a: UInt64, _ p: UInt64) -> UInt64 { a == 0 ? 0 : power(a, p - 2, p) }

    /// Deterministic Miller-Rabin for n < 2^32 (bases 2, 7, 61 suffice).
    static func isPrime(_ n: UInt64) -> Bool {
        if n < 2 { return false }
        for small: UInt64 in [2, 3, 5, 7, 11, 13, 61] where n % small == 0 { return n == small }
        var d = n - 1, s = 0
        while d % 2 == 0 { d /= 2; s += 1 }
        witness: for a: UInt64 in [2, 7, 61] {
            var x = power(a, d, n)
            if x == 1 || x == n - 1 { continue }
            for _ in 0..<max(s - 1, 0) {
                x = x * x % n
                if x == n - 1 { continue witness }
            }
            return false
        }
        return true
    }

    /// Primes just below 2^31, largest first; each exceeds 2^30, so an integer of B bits has at most
    /// B/30 of them as factors.
    static let primes: [UInt64] = {
        var result: [UInt64] = []
        var candidate: UInt64 = (1 << 31) - 1
        while result.count < 3000 {
            if isPrime(candidate) { result.append(candidate) }
            candidate -= 2
        }
        return result
    }()

    /// Rank of `rows` (each `columns` wide, entries already reduced mod p) and, for each of the
    /// `probe` first columns, whether the unit vector of that column lies in the row space.
    static func rowSpace(_ rows: [[UInt64]], columns: Int, probe: Int, p: UInt64) -> (rank: Int, contains: [Bool]) {
        var m = rows
        var pivotColumnOfRow: [Int] = []
        var rank = 0
        for column in 0..<columns where rank < m.count {
            guard let pivot = (rank..<m.count).first(where: { m[$0][column] != 0 }) else { continue }
            m.swapAt(rank, pivot)
            let inv = inverse(m[rank][column], p)
            for c in column..<columns { m[rank][c] = m[rank][c] * inv % p }
            for r in 0..<m.count where r != rank && m[r][column] != 0 {
                let factor = p - m[r][column]
                for c in column..<columns where m[rank][c] != 0 {
                    m[r][c] = (m[r][c] + factor * m[rank][c]) % p
                }
            }
            pivotColumnOfRow.append(column)
            rank += 1
        }
        var isPivot = [Bool](repeating: false, count: columns)
        pivotColumnOfRow.forEach { isPivot[$0] = true }
        var contains = [Bool](repeating: false, count: probe)
        for (row, column) in pivotColumnOfRow.enumerated() where column < probe {
            // e_column is in the row space iff its reduced row has no entry in a free column.
            contains[column] = (0..<columns).allSatisfy { isPivot[$0] || m[row][$0] == 0 }
        }
        return (rank, contains)
    }
}

import Basics
import Crypto
import CryptoExtras
import Foundation

/// What one site keeps to itself in private aggregation, and everything secret derived from it.
///
/// Two keys, both from the operating system's cryptographic generator unless a run asks for
/// reproducible (and therefore insecure) secrets:
/// - an X25519 key pair: the public half goes to every other site; with each peer's public key it
///   gives a pairwise secret only the two of them can compute, from which the pair's masks derive;
/// - a 256-bit key of its own, from which the site's ADMM duals derive.
///
/// Every value that hides something (a mask, a dual) is drawn from a ChaCha20 keystream under a key
/// derived with HKDF-SHA256 for exactly that purpose, so no output ever tells anything about another
/// output or about the keys (digest: "Pairwise masking with real cryptography").
public struct SiteSecrets: Sendable {
    private let agreementKey: Curve25519.KeyAgreement.PrivateKey
    private let ownKey: SymmetricKey
    /// True when the keys come from `--insecure-reproducible-secrets`: any site can compute them.
    public let isReproducible: Bool

    /// Fresh keys from the operating system's random source: what every real run uses.
    public init() {
        agreementKey = Curve25519.KeyAgreement.PrivateKey()
        ownKey = SymmetricKey(size: .bits256)
        isReproducible = false
    }

    /// Keys derived from the run's seed and the site's rank, so that a run can be repeated bit for
    /// bit. Anyone who knows the seed knows every site's secrets: for tests and experiments only.
    public init(insecureReproducibleFrom seed: UInt64, site: Int) {
        let material = SymmetricKey(data: Self.bytes(of: seed))
        func derived(_ label: String) -> SymmetricKey {
            Self.derive(material, salt: "fedbaechi/v1/insecure-reproducible", info: Data(label.utf8) + Self.bytes(of: UInt64(site)))
        }
        let agreementBytes = derived("agreement").withUnsafeBytes { Data($0) }
        // Any 32 bytes are a valid X25519 private key (the scalar is clamped when used).
        do { agreementKey = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: agreementBytes) } catch {
            preconditionFailure("X25519 refused a 32-byte private key: \(error)")
        }
        ownKey = derived("own")
        isReproducible = true
    }

    /// Keys given as raw bytes: the known-answer tests use the RFC's.
    init(agreementKey: [UInt8], ownKey: [UInt8]) throws {
        self.agreementKey = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: agreementKey)
        self.ownKey = SymmetricKey(data: ownKey)
        isReproducible = false
    }

    /// The 32 bytes this site publishes.
    public var publicKey: [UInt8] { Array(agreementKey.publicKey.rawRepresentation) }

    /// A peer's public key that cannot be used, or a set of keys that cannot be right.
    public struct Failure: UserFacingError {
        public let description: String
        public var exitStatus: ExitStatus { .runtime }
    }

    /// The pairwise masks of `site` with every other site, from everyone's public keys (indexed by
    /// site; this site's own entry must be its own key). Every site checks every key, so all sites
    /// reach the same verdict about a bad key without another message.
    public func pairwiseMasks(site: Int, publicKeys: [[UInt8]]) throws(Failure) -> PairwiseMasks {
        // Whether X25519 accepts a key does not depend on the private key it meets, so every site
        // judges every key (its own published one included) the same way and names the same site.
        var shared: [SharedSecret] = []
        for (peer, key) in publicKeys.enumerated() {
            do {
                shared.append(try agreement(with: key))
            } catch {
                throw Failure(description: "site \(peer) sent a malformed public key (\(key.count) bytes, \(Self.hexPrefix(key))…): "
                              + "X25519 key agreement with it fails")
            }
        }
        var seen: [[UInt8]: Int] = [:]
        for (peer, key) in publicKeys.enumerated() {
            if let earlier = seen[key] {
                throw Failure(description: "sites \(earlier) and \(peer) published the same public key")
            }
            seen[key] = peer
        }
        guard publicKeys.indices.contains(site), publicKeys[site] == publicKey else {
            throw Failure(description: "site \(site)'s own public key is not at its place among the \(publicKeys.count) keys")
        }
        var pairKeys: [Int: SymmetricKey] = [:]
        for (peer, key) in publicKeys.enumerated() where peer != site {
            let (low, high) = site < peer ? (publicKeys[site], key) : (key, publicKeys[site])
            pairKeys[peer] = Self.derive(Self.material(shared[peer]), salt: "fedbaechi/v1/pair", info: Data(low + high))
        }
        return PairwiseMasks(site: site, pairKeys: pairKeys)
    }

    /// This site's initial duals lambda_i^0 for one round, uniform on [-range/2, range/2): fresh every
    /// round (reused duals would link rounds) and known to this site alone.
    public func duals(round: Int, count: Int, range: Double) -> [Double] {
        let key = Self.derive(ownKey, salt: "fedbaechi/v1/duals", info: Self.bytes(of: UInt64(round)))
        var words = [UInt64](repeating: 0, count: count)
        Keystream.add(to: &words, key: key)
        return words.map { (Double($0 >> 11) * 0x1p-53 - 0.5) * range }
    }

    /// HKDF-SHA256 (RFC 5869) to a 256-bit key: every key of the protocol is derived this way, with a
    /// salt naming its kind and info naming its use, so no two uses share a key.
    static func derive(_ material: SymmetricKey, salt: String, info: Data, bytes: Int = 32) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: material, salt: Data(salt.utf8), info: info, outputByteCount: bytes)
    }

    /// The raw X25519 output with a peer's public key (what the known-answer test checks).
    /// A point of small order (the all-zero key among them) gives the all-zero secret whatever the
    /// private key: RFC 7748, section 6.1, says to refuse it, and swift-crypto does not.
    func agreement(with publicKey: [UInt8]) throws -> SharedSecret {
        let secret = try agreementKey.sharedSecretFromKeyAgreement(with: try Curve25519.KeyAgreement.PublicKey(rawRepresentation: publicKey))
        guard secret.withUnsafeBytes({ $0.contains { $0 != 0 } }) else { throw Failure(description: "a point of small order") }
        return secret
    }

    static func material(_ secret: SharedSecret) -> SymmetricKey { secret.withUnsafeBytes { SymmetricKey(data: Data($0)) } }

    static func bytes(of value: UInt64) -> Data { withUnsafeBytes(of: value.littleEndian) { Data($0) } }

    private static func hexPrefix(_ bytes: [UInt8]) -> String {
        bytes.prefix(8).map { String(format: "%02x", $0) }.joined()
    }
}

/// Where in the protocol a mask is used: masks of different purposes derive from different keys.
public struct MaskPurpose: Sendable, Hashable {
    public var round: Int
    public var iteration: Int
    public var phase: Phase

    public enum Phase: UInt64, Sendable {
        /// Members of one group hide their messages from each other.
        case group = 1
        /// Group leaders hide their group sums from each other while forming z.
        case leaders = 2
        /// All sites hide their models while the exact mean is formed (the opt-in diagnostic).
        case check = 3
    }

    public init(round: Int, iteration: Int, phase: Phase) {
        self.round = round
        self.iteration = iteration
        self.phase = phase
    }

    /// HKDF's info bytes: round, iteration and phase, 8 bytes each.
    var info: Data {
        SiteSecrets.bytes(of: UInt64(round)) + SiteSecrets.bytes(of: UInt64(bitPattern: Int64(iteration)))
            + SiteSecrets.bytes(of: phase.rawValue)
    }
}

/// Pairwise additive masks (as in secure aggregation): each pair of sites shares a key from X25519
/// key agreement; for a purpose, the lower-numbered site adds the pair's keystream and the higher one
/// subtracts it, mod 2^64, so over any set of sites that holds both ends of every pair the masks
/// cancel exactly, and any proper part of such a sum is uniformly random.
public struct PairwiseMasks: Sendable {
    public let site: Int
    /// The key this site shares with each other site.
    private let pairKeys: [Int: SymmetricKey]

    init(site: Int, pairKeys: [Int: SymmetricKey]) {
        self.site = site
        self.pairKeys = pairKeys
    }

    /// Adds this site's masks for a sum over `members` (sites, including this one) to `values`.
    public func mask(_ values: inout [UInt64], members: [Int], purpose: MaskPurpose) {
        let streams = streams(members: members, purpose: purpose)
        values.withUnsafeMutableBufferPointer { streams.mask($0, at: 0) }
    }

    /// This site's mask keys for a sum over `members` under `purpose`, derived once, so that a vector
    /// can be masked slice by slice.
    public func streams(members: [Int], purpose: MaskPurpose) -> MaskStreams {
        MaskStreams(keys: members.filter { $0 != site }.map { peer in
            guard let pairKey = pairKeys[peer] else { preconditionFailure("site \(site) shares no key with site \(peer)") }
            return (SiteSecrets.derive(pairKey, salt: "fedbaechi/v1/mask", info: purpose.info), adds: site < peer)
        })
    }
}

/// One site's masks for one sum: per peer, the keystream it adds (the lower site of the pair) or
/// subtracts (the higher).
public struct MaskStreams: Sendable {
    let keys: [(key: SymmetricKey, adds: Bool)]

    /// Masks `values`, the slice of the whole vector that starts at word `offset` (a multiple of 8,
    /// ChaCha20's block of 64 bytes): slice i gets the keystream's words at its own positions, so a
    /// vector masked slice by slice is masked exactly as in one piece.
    public func mask(_ values: UnsafeMutableBufferPointer<UInt64>, at offset: Int) {
        for (key, adds) in keys {
            if adds { Keystream.add(to: values, key: key, at: offset) } else { Keystream.subtract(from: values, key: key, at: offset) }
        }
    }
}

/// The ChaCha20 keystream (RFC 8439, zero nonce, block counter from 0) of a 256-bit key read as
/// little-endian 64-bit words: uniform on Z_(2^64), and unpredictable without the key. Each key is
/// derived for one purpose, so a (key, nonce) pair is never used twice.
public enum Keystream {
    /// Words per ChaCha20 call: 4,096 blocks of 64 bytes, so the stream stays in cache.
    static let chunkWords = 32_768
    private static let zeros = Data(count: chunkWords * 8)

    /// `values[i] += word i` (mod 2^64).
    public static func add(to values: inout [UInt64], key: SymmetricKey) {
        values.withUnsafeMutableBufferPointer { add(to: $0, key: key, at: 0) }
    }

    /// `values[i] -= word i` (mod 2^64).
    public static func subtract(from values: inout [UInt64], key: SymmetricKey) {
        values.withUnsafeMutableBufferPointer { subtract(from: $0, key: key, at: 0) }
    }

    /// `values[i] += word (offset + i)`: the slice of a longer vector that starts at word `offset`
    /// (a multiple of 8).
    public static func add(to values: UnsafeMutableBufferPointer<UInt64>, key: SymmetricKey, at offset: Int) {
        combine(values, key: key, at: offset) { $0 &+ $1 }
    }

    /// `values[i] -= word (offset + i)`.
    public static func subtract(from values: UnsafeMutableBufferPointer<UInt64>, key: SymmetricKey, at offset: Int) {
        combine(values, key: key, at: offset) { $0 &- $1 }
    }

    /// The first `count` words.
    public static func words(key: SymmetricKey, count: Int) -> [UInt64] {
        var words = [UInt64](repeating: 0, count: count)
        add(to: &words, key: key)
        return words
    }

    @inline(__always)
    private static func combine(_ out: UnsafeMutableBufferPointer<UInt64>, key: SymmetricKey, at offset: Int,
                                _ operation: (UInt64, UInt64) -> UInt64) {
        precondition(offset >= 0 && offset % 8 == 0, "a keystream slice starts at a whole ChaCha20 block")
        precondition((offset + out.count) / 8 < Int(UInt32.max), "a keystream longer than ChaCha20's block counter reaches")
        let nonce: Insecure.ChaCha20CTR.Nonce
        do { nonce = try Insecure.ChaCha20CTR.Nonce(data: Data(count: 12)) } catch { preconditionFailure("a 12-byte nonce: \(error)") }
        var start = 0
        while start < out.count {
            let count = min(chunkWords, out.count - start)
            let stream: Data
            do {
                stream = try Insecure.ChaCha20CTR.encrypt(zeros.prefix(count * 8), using: key,
                                                          counter: try .init(offset: UInt32((offset + start) / 8)), nonce: nonce)
            } catch {
                preconditionFailure("ChaCha20 refused a 256-bit key: \(error)")
            }
            stream.withUnsafeBytes { raw in
                for i in 0..<count {
                    out[start + i] = operation(out[start + i], UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
                }
            }
            start += count
        }
    }
}

import Crypto
import CryptoExtras
import Foundation
import Testing
@testable import Federated

/// The cryptography behind federated secrets, against the RFCs' known answers, and the properties the
/// protocol relies on: keys agreed alike by both ends, masks that cancel, duals in their range, bad
/// public keys refused alike by every site.
struct SecretsTests {
    static func bytes(_ hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return result
    }

    /// RFC 7748, section 6.1: Alice's and Bob's X25519 keys and their shared secret.
    @Test func x25519AgreesAsRFC7748Says() throws {
        let alice = try SiteSecrets(agreementKey: Self.bytes("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
                                    ownKey: [UInt8](repeating: 0, count: 32))
        let bob = try SiteSecrets(agreementKey: Self.bytes("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
                                  ownKey: [UInt8](repeating: 1, count: 32))
        #expect(alice.publicKey == Self.bytes("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"))
        #expect(bob.publicKey == Self.bytes("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
        let shared = Self.bytes("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        #expect(try alice.agreement(with: bob.publicKey).withUnsafeBytes { Array($0) } == shared)
        #expect(try bob.agreement(with: alice.publicKey).withUnsafeBytes { Array($0) } == shared)
        // Both ends derive the same pair key: Alice's mask plus Bob's is zero.
        let keys = [alice.publicKey, bob.publicKey]
        var a = [UInt64](repeating: 0, count: 100), b = a
        try alice.pairwiseMasks(site: 0, publicKeys: keys).mask(&a, members: [0, 1], purpose: MaskPurpose(round: 1, iteration: 0, phase: .group))
        try bob.pairwiseMasks(site: 1, publicKeys: keys).mask(&b, members: [0, 1], purpose: MaskPurpose(round: 1, iteration: 0, phase: .group))
        #expect(a.allSatisfy { $0 != 0 })
        #expect(zip(a, b).allSatisfy { $0 &+ $1 == 0 })
    }

    /// RFC 5869, test case 1 (HKDF-SHA256), through the one function every key of the protocol uses.
    @Test func hkdfDerivesAsRFC5869Says() {
        let ikm = SymmetricKey(data: [UInt8](repeating: 0x0b, count: 22))
        // The RFC's salt is not text: check swift-crypto's HKDF with it, then `derive` against that HKDF.
        let okm = HKDF<SHA256>.deriveKey(inputKeyMaterial: ikm, salt: Self.bytes("000102030405060708090a0b0c"),
                                         info: Self.bytes("f0f1f2f3f4f5f6f7f8f9"), outputByteCount: 42)
        #expect(okm.withUnsafeBytes { Array($0) } == Self.bytes(
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"))
        let text = SiteSecrets.derive(ikm, salt: "fedbaechi", info: Data(Self.bytes("f0f1f2f3f4f5f6f7f8f9")), bytes: 42)
        let reference = HKDF<SHA256>.deriveKey(inputKeyMaterial: ikm, salt: Data("fedbaechi".utf8),
                                               info: Self.bytes("f0f1f2f3f4f5f6f7f8f9"), outputByteCount: 42)
        #expect(text == reference)
    }

    /// RFC 8439, appendix A.1, test vectors 1 and 2: the ChaCha20 blocks 0 and 1 of the zero key and
    /// zero nonce, read as little-endian words.
    @Test func keystreamIsChaCha20AsRFC8439Says() {
        let words = Keystream.words(key: SymmetricKey(data: [UInt8](repeating: 0, count: 32)), count: 16)
        let stream = words.flatMap { word in withUnsafeBytes(of: word.littleEndian) { Array($0) } }
        #expect(stream == Self.bytes("76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
                                     + "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
                                     + "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
                                     + "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f"))
    }

    /// The keystream is read in chunks; across chunk boundaries it is the one ChaCha20 stream.
    @Test func chunkedKeystreamIsOneStream() throws {
        let key = SymmetricKey(size: .bits256)
        let count = 2 * Keystream.chunkWords + 77
        let whole = try Insecure.ChaCha20CTR.encrypt(Data(count: count * 8), using: key,
                                                     nonce: try Insecure.ChaCha20CTR.Nonce(data: Data(count: 12)))
        let expected = whole.withUnsafeBytes { raw in
            (0..<count).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)) }
        }
        #expect(Keystream.words(key: key, count: count) == expected)
        var values = expected
        Keystream.subtract(from: &values, key: key)
        #expect(values.allSatisfy { $0 == 0 })
    }

    /// A slice of a vector masked at its offset gets the words of the whole stream at its own
    /// positions (checked against ChaCha20 over the whole vector), so the aggregation can mask a model
    /// chunk by chunk and send exactly what masking it in one piece would.
    @Test func slicesOfTheKeystreamAreTheWholeStreamsWords() throws {
        let key = SymmetricKey(size: .bits256)
        let count = Keystream.chunkWords + 1_000
        let whole = try Insecure.ChaCha20CTR.encrypt(Data(count: count * 8), using: key,
                                                     nonce: try Insecure.ChaCha20CTR.Nonce(data: Data(count: 12)))
        let expected = whole.withUnsafeBytes { raw in
            (0..<count).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)) }
        }
        var sliced = [UInt64](repeating: 0, count: count)
        sliced.withUnsafeMutableBufferPointer { out in
            // Slices of uneven lengths, one across the keystream's own chunk boundary, the last short.
            for bounds in [0..<8, 8..<4_104, 4_104..<(Keystream.chunkWords + 64), (Keystream.chunkWords + 64)..<count] {
                Keystream.add(to: UnsafeMutableBufferPointer(rebasing: out[bounds]), key: key, at: bounds.lowerBound)
            }
        }
        #expect(sliced == expected)

        let secrets = (0..<3).map { SiteSecrets(insecureReproducibleFrom: 11, site: $0) }
        let keys = secrets.map(\.publicKey)
        let masks = try secrets[1].pairwiseMasks(site: 1, publicKeys: keys)
        let purpose = MaskPurpose(round: 2, iteration: 1, phase: .group)
        var inOnePiece = (0..<UInt64(count)).map { $0 &* 0x9E37_79B9_7F4A_7C15 }
        var byChunks = inOnePiece
        masks.mask(&inOnePiece, members: [0, 1, 2], purpose: purpose)
        let streams = masks.streams(members: [0, 1, 2], purpose: purpose)
        byChunks.withUnsafeMutableBufferPointer { out in
            for start in stride(from: 0, to: count, by: 8_192) {
                streams.mask(UnsafeMutableBufferPointer(rebasing: out[start..<min(start + 8_192, count)]), at: start)
            }
        }
        #expect(byChunks == inOnePiece)
        #expect(byChunks != (0..<UInt64(count)).map { $0 &* 0x9E37_79B9_7F4A_7C15 })
    }

    @Test func dualsAreFreshUniformAndPrivate() {
        let site = SiteSecrets()
        let count = 50_000
        for range in [1.0, 8.0] {
            let duals = site.duals(round: 1, count: count, range: range)
            #expect(duals.allSatisfy { $0 >= -range / 2 && $0 < range / 2 })
            let mean = duals.reduce(0, +) / Double(count)
            // Standard error range / sqrt(12 count): five of them.
            #expect(abs(mean) < 5 * range / (12.0 * Double(count)).squareRoot())
            let variance = duals.map { $0 * $0 }.reduce(0, +) / Double(count)
            #expect(abs(variance / (range * range / 12) - 1) < 0.03)
        }
        #expect(site.duals(round: 1, count: 8, range: 1) == site.duals(round: 1, count: 8, range: 1))
        #expect(site.duals(round: 1, count: 8, range: 1) != site.duals(round: 2, count: 8, range: 1))
        // Another site's random keys give other duals; reproducible keys repeat, and differ per site.
        #expect(SiteSecrets().duals(round: 1, count: 8, range: 1) != site.duals(round: 1, count: 8, range: 1))
        let a = SiteSecrets(insecureReproducibleFrom: 5, site: 3), b = SiteSecrets(insecureReproducibleFrom: 5, site: 3)
        #expect(a.publicKey == b.publicKey && a.duals(round: 4, count: 8, range: 1) == b.duals(round: 4, count: 8, range: 1))
        #expect(a.isReproducible && !site.isReproducible)
        #expect(SiteSecrets(insecureReproducibleFrom: 5, site: 4).publicKey != a.publicKey)
        #expect(SiteSecrets().publicKey != SiteSecrets().publicKey)
    }

    /// A low-order point (all zeros), a short key, a repeated key: refused, naming the site, by every
    /// site alike.
    @Test func badPublicKeysAreRefusedAlikeEverywhere() {
        let secrets = (0..<4).map { _ in SiteSecrets() }
        for (bad, message) in [([UInt8](repeating: 0, count: 32), "site 2 sent a malformed public key"),
                               (Array(secrets[2].publicKey.prefix(31)), "site 2 sent a malformed public key"),
                               (secrets[1].publicKey, "sites 1 and 2 published the same public key")] {
            var keys = secrets.map(\.publicKey)
            keys[2] = bad
            for site in [0, 1, 3] {
                #expect(throws: SiteSecrets.Failure.self) { try secrets[site].pairwiseMasks(site: site, publicKeys: keys) }
                do { _ = try secrets[site].pairwiseMasks(site: site, publicKeys: keys) } catch {
                    #expect(error.description.hasPrefix(message), "\(error)")
                }
            }
        }
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {XonTest} from "./utils/XonTest.sol";
import {SchnorrSigner} from "./utils/SchnorrSigner.sol";
import {FrostVerifier} from "../src/FrostVerifier.sol";
import {FrostVerifierHarness} from "../src/test/FrostVerifierHarness.sol";

contract FrostVerifierTest is XonTest {
    using SchnorrSigner for SchnorrSigner.Key;

    uint256 internal constant N = FrostVerifier.N;
    uint256 internal constant P = FrostVerifier.P;

    // RFC 9591 Appendix E.5, FROST(secp256k1, SHA-256), from
    // /work/shared/vectors/frost-secp256k1-sha256-rfc9591.json (read from disk in
    // test_rfcVectorFromFile; the y-coordinates below were decompressed off-line).
    uint256 internal constant RFC_PX = 0xf37c34b66ced1fb51c34a90bdae006901f10625cc06c4f64663b0eae87d87b4f;
    uint8 internal constant RFC_PARITY = 0; // group_public_key prefix 02
    uint256 internal constant RFC_RX = 0x05b6d04d3774c8929413e3c76024d54149c372d57aae62574ed74319b5ea14d0;
    uint256 internal constant RFC_RY = 0xe8c864734e5a7ca750bae921423cf8d29a9a9e6251f09269480a7770b8204a36;
    uint256 internal constant RFC_Z = 0xc65dde8492a7471437e6c2fe3da49b90d23f642b5c6dbe7e36089f096dd97324;
    bytes internal constant RFC_MESSAGE = hex"74657374";
    bytes internal constant RFC_SIG =
        hex"0205b6d04d3774c8929413e3c76024d54149c372d57aae62574ed74319b5ea14d0c65dde8492a7471437e6c2fe3da49b90d23f642b5c6dbe7e36089f096dd97324";

    /// Execution gas budget for one verification (issue: ≤ 6,500).
    uint256 internal constant VERIFY_GAS_LIMIT = 6_500;

    FrostVerifierHarness internal harness;
    SchnorrSigner.Key internal key;

    function setUp() public {
        harness = new FrostVerifierHarness();
        key = SchnorrSigner.keyFromSeed(1);
    }

    // ------------------------------------------------------------ RFC 9591 vector

    function test_rfcVector() public view {
        vm.assertTrue(FrostVerifier.verifyMessage(RFC_PX, RFC_PARITY, RFC_MESSAGE, RFC_RX, RFC_RY, RFC_Z), "RFC vector");
        vm.assertTrue(FrostVerifier.verifyCompressed(RFC_PX, RFC_PARITY, RFC_MESSAGE, RFC_SIG), "RFC 65-byte form");
        vm.assertTrue(
            harness.verifyMessage(RFC_PX, RFC_PARITY, RFC_MESSAGE, abi.encodePacked(RFC_RX, RFC_RY, RFC_Z)), "harness"
        );
    }

    /// The ZcashFoundation frost-secp256k1 vector committed under tests/vectors/zf (same
    /// group key as the RFC's, other nonces), read from disk.
    function test_zfVectorFromFile() public view {
        string memory json = vm.readFile(string.concat(vm.projectRoot(), "/../tests/vectors/zf/vectors.json"));
        bytes memory pk = vm.parseJsonBytes(json, ".inputs.group_public_key");
        bytes memory msg_ = vm.parseJsonBytes(json, ".inputs.message");
        bytes memory sig = vm.parseJsonBytes(json, ".final_output.sig");
        vm.assertEq(pk.length, 33, "compressed group key");
        uint256 px;
        assembly {
            px := mload(add(pk, 33))
        }
        uint8 parity = uint8(pk[0]) - 2;
        vm.assertEq(px, RFC_PX, "group key");
        vm.assertTrue(FrostVerifier.verifyCompressed(px, parity, msg_, sig), "vector from file");
        vm.assertTrue(harness.verifyCompressed(px, parity, msg_, sig), "harness");
        sig[40] ^= 0x01;
        vm.assertFalse(FrostVerifier.verifyCompressed(px, parity, msg_, sig), "mutated z");
        (bool ok, uint256 ry) = FrostVerifier.liftX(RFC_RX, 0);
        vm.assertTrue(ok && ry == RFC_RY, "decompressed R");
    }

    /// The signer's independent H2 agrees with the verifier's on the RFC inputs.
    function test_challengeMatchesSigner() public view {
        uint256 a = FrostVerifier.challenge(RFC_RX, 0, RFC_PX, RFC_PARITY, RFC_MESSAGE);
        uint256 b = SchnorrSigner.challenge(RFC_RX, 0, RFC_PX, RFC_PARITY, RFC_MESSAGE);
        vm.assertEq(a, b, "challenge");
    }

    // ------------------------------------------------------------ gas

    function test_gas_verify32() public {
        bytes32 m = keccak256("xon");
        SchnorrSigner.Signature memory s = key.sign(m);
        uint256 px = key.x;
        uint256 parity = key.parity;
        uint256 before = gasleft();
        bool ok = FrostVerifier.verify(px, parity, m, s.rx, s.ry, s.z);
        uint256 used = before - gasleft();
        vm.assertTrue(ok, "valid");
        vm.assertLe(used, VERIFY_GAS_LIMIT, "verify gas");
        emit log_named_uint("FrostVerifier.verify (32-byte message) gas", used);

        bytes memory enc = SchnorrSigner.encodeCompressed(s);
        bytes memory mb = abi.encodePacked(m);
        before = gasleft();
        ok = FrostVerifier.verifyCompressed(px, parity, mb, enc);
        used = before - gasleft();
        vm.assertTrue(ok, "valid compressed");
        emit log_named_uint("FrostVerifier.verifyCompressed (65-byte RFC form) gas", used);
    }

    event log_named_uint(string key, uint256 val);

    // ------------------------------------------------------------ fuzz: valid

    function testFuzz_validSignatureVerifies(uint256 seed, bytes32 m) public {
        SchnorrSigner.Key memory k = SchnorrSigner.keyFromSeed(seed);
        SchnorrSigner.Signature memory s = k.sign(m, seed);
        vm.assertTrue(FrostVerifier.verify(k.x, k.parity, m, s.rx, s.ry, s.z), "valid signature");
    }

    /// The 32-byte fast path and the general-length path agree, on valid signatures and on
    /// arbitrary (mostly invalid) inputs.
    function testFuzz_fastPathAgreesWithGeneralPath(bytes32 m, uint256 rx, uint256 ry, uint256 z, bool valid) public {
        if (valid) {
            SchnorrSigner.Signature memory s = key.sign(m, rx);
            (rx, ry, z) = (s.rx, s.ry, s.z);
        } else if (rx % 2 == 0) {
            // A genuine point R with a wrong z reaches the ecrecover comparison.
            SchnorrSigner.Signature memory s = key.sign(m, rx);
            vm.assume(z != s.z);
            (rx, ry) = (s.rx, s.ry);
        }
        bool fast = FrostVerifier.verify(key.x, key.parity, m, rx, ry, z);
        bool general = FrostVerifier.verifyMessage(key.x, key.parity, abi.encodePacked(m), rx, ry, z);
        vm.assertEq(fast, general, "paths disagree");
        vm.assertEq(fast, valid, "validity");
    }

    // ------------------------------------------------------------ fuzz: mutations

    function testFuzz_mutatedMessageRejected(bytes32 m, bytes32 other) public {
        vm.assume(m != other);
        SchnorrSigner.Signature memory s = key.sign(m);
        vm.assertFalse(FrostVerifier.verify(key.x, key.parity, other, s.rx, s.ry, s.z), "other message");
    }

    function testFuzz_mutatedZRejected(bytes32 m, uint256 z) public {
        SchnorrSigner.Signature memory s = key.sign(m);
        vm.assume(z != s.z);
        vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, s.rx, s.ry, z), "mutated z");
        // z + n is the same scalar but not canonical: rejected.
        if (s.z < type(uint256).max - N) {
            vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, s.rx, s.ry, s.z + N), "z + n");
        }
    }

    function testFuzz_mutatedRRejected(bytes32 m, uint256 rx, uint256 ry) public {
        SchnorrSigner.Signature memory s = key.sign(m);
        vm.assume(rx != s.rx || ry != s.ry);
        vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, rx, ry, s.z), "arbitrary R");
        // −R (same x, other y) and a genuine other point R' must fail too.
        vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, s.rx, P - s.ry, s.z), "-R");
        SchnorrSigner.Signature memory t = key.sign(m, uint256(keccak256(abi.encode(rx, ry))));
        if (t.rx != s.rx) {
            vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, t.rx, t.ry, s.z), "other nonce point");
        }
    }

    function testFuzz_mutatedKeyRejected(bytes32 m, uint256 seed, uint256 px) public {
        SchnorrSigner.Signature memory s = key.sign(m);
        SchnorrSigner.Key memory other = SchnorrSigner.keyFromSeed(seed);
        vm.assume(other.x != key.x);
        vm.assertFalse(FrostVerifier.verify(other.x, other.parity, m, s.rx, s.ry, s.z), "other key");
        vm.assertFalse(FrostVerifier.verify(key.x, 1 - key.parity, m, s.rx, s.ry, s.z), "negated key");
        vm.assume(px != key.x);
        vm.assertFalse(FrostVerifier.verify(px, key.parity, m, s.rx, s.ry, s.z), "arbitrary key x");
    }

    /// A single flipped bit anywhere in the 96-byte encoding or the message fails.
    function testFuzz_bitFlipRejected(bytes32 m, uint16 bit) public {
        SchnorrSigner.Signature memory s = key.sign(m);
        bytes memory enc = SchnorrSigner.encode(s);
        uint256 b = uint256(bit) % (96 * 8 + 256);
        if (b < 96 * 8) {
            enc[b / 8] = enc[b / 8] ^ bytes1(uint8(1 << (b % 8)));
            vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, enc), "flipped signature bit");
        } else {
            bytes32 flipped = m ^ bytes32(uint256(1) << (b - 96 * 8));
            vm.assertFalse(FrostVerifier.verify(key.x, key.parity, flipped, enc), "flipped message bit");
        }
    }

    // ------------------------------------------------------------ edge cases

    function test_rejectsOutOfRangeInputs() public {
        bytes32 m = keccak256("edge");
        SchnorrSigner.Signature memory s = key.sign(m);
        vm.assertTrue(FrostVerifier.verify(key.x, key.parity, m, s.rx, s.ry, s.z), "baseline");
        vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, s.rx, s.ry, 0), "z = 0");
        vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, s.rx, s.ry, N), "z = n");
        vm.assertFalse(FrostVerifier.verify(0, key.parity, m, s.rx, s.ry, s.z), "px = 0");
        vm.assertFalse(FrostVerifier.verify(N, key.parity, m, s.rx, s.ry, s.z), "px = n");
        vm.assertFalse(FrostVerifier.verify(type(uint256).max, key.parity, m, s.rx, s.ry, s.z), "px = 2^256 - 1");
        vm.assertFalse(FrostVerifier.verify(key.x, 2, m, s.rx, s.ry, s.z), "parity 2");
        vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, P, s.ry, s.z), "rx = p");
        vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, s.rx, P, s.z), "ry = p");
        if (s.ry < 2 ** 256 - 1 - P) {
            vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, s.rx, s.ry + P, s.z), "ry + p");
        }
        vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, 0, 0, s.z), "R = (0, 0)");
        bytes memory enc = SchnorrSigner.encode(s);
        vm.assertTrue(FrostVerifier.verify(key.x, key.parity, m, enc), "96-byte encoding");
        vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, abi.encodePacked(enc, uint8(0))), "97 bytes");
        vm.assertFalse(FrostVerifier.verify(key.x, key.parity, m, SchnorrSigner.encodeCompressed(s)), "65 bytes");
        // Px >= n can be a valid x-coordinate but is refused as a group key.
        vm.assertFalse(FrostVerifier.isValidGroupKey(N, 0), "px = n");
        vm.assertFalse(FrostVerifier.isValidGroupKey(0, 0), "px = 0");
        vm.assertTrue(FrostVerifier.isValidGroupKey(key.x, key.parity), "test key");
        vm.assertTrue(FrostVerifier.isValidGroupKey(RFC_PX, RFC_PARITY), "RFC key");
        // x = 5: 5^3 + 7 = 132 is not a square mod p, so no point has x = 5.
        vm.assertFalse(FrostVerifier.isValidGroupKey(5, 0), "x not on curve");
    }
}

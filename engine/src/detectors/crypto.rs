//! The few hash functions and encodings crypto-address validators need,
//! small enough to carry here instead of pulling crates into the wasm
//! module: SHA-256 (base58check), Keccak-256 (EIP-55), base58, bech32.

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 (FIPS 180-4). The whole blocks are read in place and the tail
/// is padded on the stack: nothing is allocated (it runs twice per
/// base58check candidate).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h = H0;
    let mut blocks = data.chunks_exact(64);
    for block in &mut blocks {
        if let Some(block) = block.first_chunk::<64>() {
            compress(&mut h, block);
        }
    }
    // The tail, 0x80 and the bit length: one block, or two when the tail
    // leaves no room for the length.
    let tail = blocks.remainder();
    let mut last = [0u8; 128];
    last[..tail.len()].copy_from_slice(tail);
    last[tail.len()] = 0x80;
    let end = if tail.len() < 56 { 64 } else { 128 };
    last[end - 8..end].copy_from_slice(&(data.len() as u64).wrapping_mul(8).to_be_bytes());
    for block in last[..end].chunks_exact(64) {
        if let Some(block) = block.first_chunk::<64>() {
            compress(&mut h, block);
        }
    }
    let mut out = [0u8; 32];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// One SHA-256 block into the state `h`.
fn compress(h: &mut [u32; 8], block: &[u8; 64]) {
    let mut w = [0u32; 64];
    for (i, word) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    }
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16]
            .wrapping_add(s0)
            .wrapping_add(w[i - 7])
            .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = *h;
    for i in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = hh
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(K[i])
            .wrapping_add(w[i]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        hh = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
        *x = x.wrapping_add(y);
    }
}

const RC: [u64; 24] = [
    0x0000000000000001,
    0x0000000000008082,
    0x800000000000808a,
    0x8000000080008000,
    0x000000000000808b,
    0x0000000080000001,
    0x8000000080008081,
    0x8000000000008009,
    0x000000000000008a,
    0x0000000000000088,
    0x0000000080008009,
    0x000000008000000a,
    0x000000008000808b,
    0x800000000000008b,
    0x8000000000008089,
    0x8000000000008003,
    0x8000000000008002,
    0x8000000000000080,
    0x000000000000800a,
    0x800000008000000a,
    0x8000000080008081,
    0x8000000000008080,
    0x0000000080000001,
    0x8000000080008008,
];
const ROT: [u32; 25] = [
    0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14,
];

fn keccak_f(a: &mut [u64; 25]) {
    for rc in RC {
        let mut c = [0u64; 5];
        for x in 0..5 {
            c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
        }
        for x in 0..5 {
            let d = c[(x + 4) % 5] ^ c[(x + 1) % 5].rotate_left(1);
            for y in 0..5 {
                a[x + 5 * y] ^= d;
            }
        }
        let mut b = [0u64; 25];
        for x in 0..5 {
            for y in 0..5 {
                b[y + 5 * ((2 * x + 3 * y) % 5)] = a[x + 5 * y].rotate_left(ROT[x + 5 * y]);
            }
        }
        for x in 0..5 {
            for y in 0..5 {
                a[x + 5 * y] = b[x + 5 * y] ^ (!b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]);
            }
        }
        a[0] ^= rc;
    }
}

/// Keccak-256 as Ethereum uses it (original padding `0x01`, not SHA-3's).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    const RATE: usize = 136;
    let mut state = [0u64; 25];
    let mut absorb = |block: &[u8]| {
        for (i, lane) in block.chunks_exact(8).enumerate() {
            let mut v = [0u8; 8];
            v.copy_from_slice(lane);
            state[i] ^= u64::from_le_bytes(v);
        }
        keccak_f(&mut state);
    };
    // Whole blocks in place, the padded tail (`0x01 … 0x80`) on the
    // stack: nothing is allocated (an address is 40 bytes).
    let mut blocks = data.chunks_exact(RATE);
    for block in &mut blocks {
        absorb(block);
    }
    let tail = blocks.remainder();
    let mut last = [0u8; RATE];
    last[..tail.len()].copy_from_slice(tail);
    last[tail.len()] = 0x01;
    last[RATE - 1] |= 0x80;
    absorb(&last);
    let mut out = [0u8; 32];
    for i in 0..4 {
        out[i * 8..i * 8 + 8].copy_from_slice(&state[i].to_le_bytes());
    }
    out
}

const B58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A byte's value in an alphabet, `NOT_A_DIGIT` for bytes outside it.
const NOT_A_DIGIT: u8 = 0xff;

const fn digits<const N: usize>(alphabet: &[u8; N]) -> [u8; 256] {
    let mut t = [NOT_A_DIGIT; 256];
    let mut i = 0;
    while i < N {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
}

static B58_DIGITS: [u8; 256] = digits(B58);

/// Decodes base58 (Bitcoin alphabet); `None` on a byte outside it.
pub fn base58_decode(s: &[u8]) -> Option<Vec<u8>> {
    // Little-endian while decoding, so a carry appends a byte instead of
    // shifting the number; the digit of a byte comes from a table, not a
    // search of the alphabet.
    let mut le: Vec<u8> = Vec::with_capacity(s.len());
    for &c in s {
        let digit = B58_DIGITS[usize::from(c)];
        if digit == NOT_A_DIGIT {
            return None;
        }
        let mut carry = u32::from(digit);
        for byte in le.iter_mut() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            le.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.iter().take_while(|&&c| c == b'1').count();
    let mut full = vec![0u8; zeros];
    full.extend(le.iter().rev());
    Some(full)
}

/// `base58_decode(s)` when it is exactly 25 bytes long (a P2PKH / P2SH
/// address: version, 20-byte hash, checksum), `None` otherwise; for up
/// to 35 characters. The number is built in eight 32-bit limbs, five
/// digits (58^5 < 2^32) per multiply, instead of a byte vector grown one
/// digit at a time, and nothing is allocated.
pub fn base58_decode_25(s: &[u8]) -> Option<[u8; 25]> {
    if s.len() > 35 {
        return None;
    }
    // 58^35 < 2^205: eight limbs cannot overflow.
    let mut limbs = [0u32; 8];
    for chunk in s.chunks(5) {
        let mut mul = 1u64;
        let mut add = 0u64;
        for &c in chunk {
            let digit = B58_DIGITS[usize::from(c)];
            if digit == NOT_A_DIGIT {
                return None;
            }
            mul *= 58;
            add = add * 58 + u64::from(digit);
        }
        let mut carry = add;
        for limb in limbs.iter_mut() {
            let v = u64::from(*limb) * mul + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
    }
    let mut be = [0u8; 32];
    for (i, limb) in limbs.iter().rev().enumerate() {
        be[i * 4..i * 4 + 4].copy_from_slice(&limb.to_be_bytes());
    }
    // `base58_decode`'s length: a zero byte per leading `1`, then the
    // number's bytes without leading zeros.
    let zeros = s.iter().take_while(|&&c| c == b'1').count();
    let significant = 32 - be.iter().take_while(|&&b| b == 0).count();
    if zeros + significant != 25 {
        return None;
    }
    let mut raw = [0u8; 25];
    raw.copy_from_slice(&be[7..]);
    Some(raw)
}

/// Base58check: the last 4 bytes are the first 4 of SHA256(SHA256(rest)).
pub fn base58check_payload(s: &[u8]) -> Option<Vec<u8>> {
    let raw = base58_decode(s)?;
    if raw.len() < 5 {
        return None;
    }
    let (payload, check) = raw.split_at(raw.len() - 4);
    let digest = sha256(&sha256(payload));
    (digest[..4] == *check).then(|| payload.to_vec())
}

const BECH32: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
static BECH32_DIGITS: [u8; 256] = digits(BECH32);

/// Verifies a bech32 (BIP-173) or bech32m (BIP-350) string, lower case.
/// Returns the constant that matched (1: bech32, 0x2bc830a3: bech32m).
pub fn bech32_verify(s: &[u8]) -> Option<u32> {
    let sep = s.iter().rposition(|&b| b == b'1')?;
    let (hrp, data) = (&s[..sep], &s[sep + 1..]);
    if hrp.is_empty() || data.len() < 6 {
        return None;
    }
    let mut values = Vec::with_capacity(hrp.len() * 2 + 1 + data.len());
    values.extend(hrp.iter().map(|b| b >> 5));
    values.push(0);
    values.extend(hrp.iter().map(|b| b & 31));
    for &c in data {
        let digit = BECH32_DIGITS[usize::from(c)];
        if digit == NOT_A_DIGIT {
            return None;
        }
        values.push(digit);
    }
    let mut chk: u32 = 1;
    const GEN: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    matches!(chk, 1 | 0x2bc830a3).then_some(chk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// `base58_decode` as it was: the alphabet searched per byte, the
    /// number big-endian.
    fn base58_decode_reference(s: &[u8]) -> Option<Vec<u8>> {
        let mut out: Vec<u8> = Vec::new();
        for &c in s {
            let mut carry = B58.iter().position(|&x| x == c)? as u32;
            for byte in out.iter_mut().rev() {
                carry += u32::from(*byte) * 58;
                *byte = (carry & 0xff) as u8;
                carry >>= 8;
            }
            while carry > 0 {
                out.insert(0, (carry & 0xff) as u8);
                carry >>= 8;
            }
        }
        let zeros = s.iter().take_while(|&&c| c == b'1').count();
        let mut full = vec![0u8; zeros];
        full.extend_from_slice(&out);
        Some(full)
    }

    #[test]
    fn base58_decoding_agrees_with_the_alphabet_search() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut decoded = 0;
        for len in 0..50usize {
            for _ in 0..40 {
                let s: Vec<u8> = (0..len)
                    .map(|i| {
                        let r = crate::test_rng::xorshift(&mut state);
                        match r % 53 {
                            0 => b"0OIl-\xff"[(r >> 8) as usize % 6],
                            // Leading ones are leading zero bytes.
                            _ if i < 3 && r.is_multiple_of(3) => b'1',
                            _ => B58[(r >> 16) as usize % 58],
                        }
                    })
                    .collect();
                let want = base58_decode_reference(&s);
                assert_eq!(base58_decode(&s), want, "{s:?}");
                decoded += usize::from(want.is_some());
            }
        }
        assert!(decoded > 500 && decoded < 1900, "{decoded}");
    }

    #[test]
    fn fixed_base58_decoding_is_the_25_byte_case_of_the_general_one() {
        let alphabet = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0Il";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut found = 0;
        for round in 0..60_000u32 {
            let len = 20 + (round % 17) as usize;
            let ones = (round / 17 % 4) as usize;
            let s: Vec<u8> = (0..len)
                .map(|i| {
                    crate::test_rng::xorshift(&mut state);
                    if i < ones {
                        b'1'
                    } else if round % 5 == 0 {
                        // Mostly high digits: numbers near the 25-byte edges.
                        b"xyz"[(state >> 20) as usize % 3]
                    } else {
                        alphabet[(state >> 20) as usize
                            % (alphabet.len() - 3 * usize::from(round % 7 != 0))]
                    }
                })
                .collect();
            let want = base58_decode(&s).filter(|r| r.len() == 25);
            assert_eq!(base58_decode_25(&s).map(|r| r.to_vec()), want, "{s:?}");
            found += usize::from(want.is_some());
        }
        assert!(found > 1000, "{found}");
        assert!(base58_decode_25(&[b'z'; 36]).is_none());
    }

    /// The padding on the stack against the textbook padding, at every
    /// length around the block edges.
    #[test]
    fn short_digests_match_the_general_padding() {
        let general = |data: &[u8]| {
            let mut h = H0;
            let mut msg = data.to_vec();
            msg.push(0x80);
            while msg.len() % 64 != 56 {
                msg.push(0);
            }
            msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
            for block in msg.chunks_exact(64) {
                compress(&mut h, block.first_chunk::<64>().expect("64 bytes"));
            }
            h.iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>()
        };
        for n in 0..140usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            assert_eq!(sha256(&data).to_vec(), general(&data), "{n}");
        }
    }

    /// The padding on the stack against the textbook padding, around the
    /// rate.
    #[test]
    fn short_keccak_matches_the_general_padding() {
        let general = |data: &[u8]| {
            let mut state = [0u64; 25];
            let mut msg = data.to_vec();
            msg.push(0x01);
            while !msg.len().is_multiple_of(136) {
                msg.push(0);
            }
            let last = msg.len() - 1;
            msg[last] |= 0x80;
            for block in msg.chunks_exact(136) {
                for (i, lane) in block.chunks_exact(8).enumerate() {
                    state[i] ^= u64::from_le_bytes(lane.try_into().expect("8 bytes"));
                }
                keccak_f(&mut state);
            }
            state[..4]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
        };
        for n in 0..300usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 13 + 5) as u8).collect();
            assert_eq!(keccak256(&data).to_vec(), general(&data), "{n}");
        }
    }

    #[test]
    fn known_vectors() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert!(base58check_payload(b"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa").is_some());
        assert!(base58check_payload(b"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb").is_none());
        assert_eq!(
            bech32_verify(b"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
            Some(1)
        );
        assert!(bech32_verify(b"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5").is_none());
    }
}

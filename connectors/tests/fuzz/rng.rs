//! A small deterministic PRNG (SplitMix64) and byte-level mutations.

/// SplitMix64: fast, decent, and the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }

    /// Up to `max - 1` random bytes.
    pub fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A short string of letters, digits and a few awkward characters.
    pub fn word(&mut self) -> String {
        const CHARS: &[char] = &[
            'a',
            'b',
            'c',
            'x',
            'y',
            'z',
            '0',
            '1',
            '9',
            '_',
            '-',
            ' ',
            'é',
            '"',
            '\\',
            ',',
            '\n',
            '{',
            '}',
            '\u{1F600}',
            '\0',
        ];
        let n = self.below(12);
        (0..n).map(|_| *self.pick(CHARS)).collect()
    }

    /// An interesting 64-bit value: boundaries, sign bits, small numbers.
    pub fn interesting_i64(&mut self) -> i64 {
        const VALUES: &[i64] = &[
            0,
            1,
            -1,
            2,
            7,
            127,
            128,
            255,
            256,
            -128,
            65_535,
            65_536,
            i32::MAX as i64,
            i32::MIN as i64,
            u32::MAX as i64,
            1 << 30,
            (1 << 30) + 1,
            64 << 20,
            (64 << 20) + 1,
            i64::MAX,
            i64::MIN,
            i64::MAX - 1,
        ];
        if self.chance(1, 4) {
            self.next_u64() as i64
        } else {
            *self.pick(VALUES)
        }
    }

    pub fn interesting_i32(&mut self) -> i32 {
        const VALUES: &[i32] = &[
            0,
            1,
            -1,
            2,
            3,
            4,
            100,
            -2,
            i32::MAX,
            i32::MIN,
            i32::MAX - 1,
            1 << 30,
            (1 << 30) + 1,
            64 << 20,
            1 << 20,
            65_536,
            255,
        ];
        if self.chance(1, 5) {
            self.next_u64() as i32
        } else {
            *self.pick(VALUES)
        }
    }
}

/// Applies 1 to 8 random mutations (skewed to few) to `data`, keeping it at most `max_len`
/// bytes long; `dictionary` holds tokens worth splicing in (JSON syntax, magic numbers).
pub fn mutate(rng: &mut Rng, data: &mut Vec<u8>, max_len: usize, dictionary: &[&[u8]]) {
    let rounds = 1 + rng.below(4) * rng.below(3);
    for _ in 0..rounds {
        mutate_once(rng, data, dictionary);
    }
    data.truncate(max_len);
}

fn put(data: &mut [u8], at: usize, bytes: &[u8]) {
    for (i, b) in bytes.iter().enumerate() {
        if let Some(slot) = data.get_mut(at + i) {
            *slot = *b;
        }
    }
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, dictionary: &[&[u8]]) {
    let len = data.len();
    let at = rng.below(len.max(1));
    match rng.below(13) {
        0 if len > 0 => data[at] ^= 1 << rng.below(8),
        1 if len > 0 => data[at] = rng.byte(),
        2 if len > 0 => data[at] = *rng.pick(&[0u8, 0xff, 0x7f, 0x80, 0x01, 0xfe]),
        3 => put(data, at, &(rng.interesting_i32() as u16).to_be_bytes()),
        4 => put(data, at, &rng.interesting_i32().to_be_bytes()),
        5 => put(data, at, &rng.interesting_i64().to_be_bytes()),
        6 => {
            let n = rng.range(1, 16);
            let bytes = rng.bytes(n);
            let at = rng.below(len + 1);
            data.splice(at..at, bytes);
        }
        7 if len > 0 => {
            let end = (at + rng.range(1, 16)).min(len);
            data.drain(at..end);
        }
        8 => data.truncate(rng.below(len + 1)),
        9 if len > 0 => {
            let end = (at + rng.range(1, 32)).min(len);
            let piece = data[at..end].to_vec();
            let to = rng.below(len + 1);
            data.splice(to..to, piece);
        }
        10 => {
            // A protobuf varint (a length or a count that lies).
            let v = rng.interesting_i64() as u64;
            let bytes = varint(v);
            if rng.chance(1, 2) {
                put(data, at, &bytes);
            } else {
                let at = rng.below(len + 1);
                data.splice(at..at, bytes);
            }
        }
        11 if !dictionary.is_empty() => {
            let token = rng.pick(dictionary).to_vec();
            if rng.chance(1, 2) {
                let at = rng.below(len + 1);
                data.splice(at..at, token);
            } else {
                let end = (at + rng.range(1, 8)).min(len);
                data.splice(at.min(len)..end, token);
            }
        }
        _ if len > 0 => {
            // Swap two bytes.
            let other = rng.below(len);
            data.swap(at, other);
        }
        _ => data.push(rng.byte()),
    }
}

/// A byte reader over a fuzz input: structured targets take their parameters from it, so
/// that every input (a saved corpus file included) is a complete case.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    pub fn u8(&mut self) -> u8 {
        let (first, rest) = self
            .data
            .split_first()
            .map_or((0, &[][..]), |(f, r)| (*f, r));
        self.data = rest;
        first
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Appends a length-prefixed (u16) piece, as [`Input::take`] after [`Input::u16`] reads it.
pub fn push_piece(out: &mut Vec<u8>, piece: &[u8]) {
    let n = piece.len().min(u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&piece[..n]);
}

//! Injected randomness: a small seeded generator, so runs replay exactly.

/// SplitMix64: tiny, fast, and good enough for picking probe targets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }
}

/// A random round-robin over `0..n` in O(1) memory: `offset + k × stride (mod n)` with the
/// stride coprime to `n` visits every index once per cycle; each cycle picks a new order.
#[derive(Debug, Clone)]
pub struct Cursor {
    k: u64,
    stride: u64,
    offset: u64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Cursor {
    /// A cursor over `0..n`.
    pub fn new(n: usize, rng: &mut Rng) -> Self {
        let mut c = Self {
            k: 0,
            stride: 1,
            offset: 0,
        };
        c.shuffle(n as u64, rng);
        c
    }

    fn shuffle(&mut self, n: u64, rng: &mut Rng) {
        if n <= 1 {
            self.stride = 1;
            self.offset = 0;
            return;
        }
        let mut s = 1 + rng.below(n - 1);
        while gcd(s, n) != 1 {
            s = s % (n - 1) + 1;
        }
        self.stride = s;
        self.offset = rng.below(n);
    }

    /// The next index in `0..n`.
    pub fn next(&mut self, n: usize, rng: &mut Rng) -> usize {
        let n = n as u64;
        if n == 0 {
            return 0;
        }
        if self.k >= n {
            self.k = 0;
            self.shuffle(n, rng);
        }
        let i = (self.offset + self.k * self.stride) % n;
        self.k += 1;
        i as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cycle_visits_every_index_once() {
        let mut rng = Rng::new(7);
        for n in 1..40usize {
            let mut c = Cursor::new(n, &mut rng);
            for _ in 0..3 {
                let mut seen: Vec<usize> = (0..n).map(|_| c.next(n, &mut rng)).collect();
                seen.sort_unstable();
                assert_eq!(seen, (0..n).collect::<Vec<_>>());
            }
        }
    }
}

//! Owner tokens: 128 random bits, as 32 lowercase hex digits.

use rand::Rng;

/// A lock owner's token: 128 bits from the thread-local CSPRNG of `rand` (ChaCha, seeded and
/// reseeded from the operating system), written as 32 hex digits. Unguessable, so only the
/// holder can release or extend its lock.
/// The two lowercase hex digits of every byte value, so a byte is one table read.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = [HEX[byte >> 4], HEX[byte & 0xf]];
        byte += 1;
    }
    table
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token([u8; 32]);

impl Token {
    pub(crate) fn new() -> Self {
        let bits: u128 = rand::rng().random();
        let mut out = [0u8; 32];
        for (pair, byte) in out.chunks_exact_mut(2).zip(bits.to_be_bytes()) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
        Token(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        // SAFETY: `new` is the only constructor and writes only ASCII hex digits (from
        // `HEX_PAIRS`), so the bytes are valid UTF-8. (Checked on every lock operation, the
        // validation cost tens of instructions a lock; `tokens_are_32_hex_digits_and_distinct`
        // checks the bytes.)
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a capability: show only enough to tell two apart.
        write!(f, "Token({}..)", &self.as_str()[..6])
    }
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn tokens_are_32_hex_digits_and_distinct() {
        let tokens: std::collections::HashSet<String> = (0..10_000)
            .map(|_| Token::new().as_str().to_owned())
            .collect();
        assert_eq!(tokens.len(), 10_000);
        for t in &tokens {
            assert_eq!(t.len(), 32);
            assert!(t
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn debug_does_not_show_the_whole_token() {
        let token = Token::new();
        let shown = format!("{token:?}");
        assert!(!shown.contains(token.as_str()), "{shown}");
    }
}

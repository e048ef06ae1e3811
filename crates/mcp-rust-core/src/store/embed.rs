//! Text embeddings without a model: hashed character trigrams, so bash-god and Python callers
//! can rank similar strings with the store's cosine similarity.

use crate::kernels;

/// 64-bit FNV-1a: a fixed, platform-independent hash, so an embedding computed today matches
/// one stored in a snapshot written by another build or machine.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Embeds text as hashed character trigrams: the lowercased text, padded with a space on each
/// side, is cut into overlapping 3-character windows; each window adds ±1 to the bucket its
/// hash selects (the sign, from another hash bit, keeps collisions from only adding up). The
/// result is L2-normalized, so similar strings get a high cosine similarity. Text with no
/// characters embeds to the zero vector; `dim == 0` gives an empty vector. The vector is
/// allocated whole: check untrusted dimensions with
/// [`check_dimension`](super::check_dimension) first.
pub fn embed_text(text: &str, dim: usize) -> Vec<f32> {
    let mut embedding = vec![0.0f32; dim];
    if dim == 0 || text.is_empty() {
        return embedding;
    }
    let chars: Vec<char> = std::iter::once(' ')
        .chain(text.chars().flat_map(char::to_lowercase))
        .chain(std::iter::once(' '))
        .collect();
    let mut buffer = [0u8; 12];
    for window in chars.windows(3) {
        let mut len = 0;
        for c in window {
            len += c.encode_utf8(&mut buffer[len..]).len();
        }
        let hash = fnv1a(&buffer[..len]);
        let bucket = (hash % dim as u64) as usize;
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        embedding[bucket] += sign;
    }
    let norm = kernels::norm(&embedding);
    if norm > 0.0 {
        embedding.iter_mut().for_each(|v| *v /= norm);
    }
    embedding
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embed_text_is_normalized_deterministic_and_similarity_preserving() {
        let a = embed_text("git commit -m 'fix'", 128);
        assert_eq!(a.len(), 128);
        assert!((kernels::norm(&a) - 1.0).abs() < 1e-5);
        assert_eq!(
            a,
            embed_text("GIT COMMIT -m 'FIX'", 128),
            "case-insensitive and deterministic"
        );
        let near = embed_text("git commit -m 'fixes'", 128);
        let far = embed_text("docker run --rm alpine", 128);
        let cos = |x: &[f32], y: &[f32]| kernels::dot(x, y).unwrap();
        assert!(cos(&a, &near) > cos(&a, &far) + 0.3);
        assert!(embed_text("", 16).iter().all(|v| *v == 0.0));
        assert!(embed_text("abc", 0).is_empty());
        // Non-ASCII input is hashed by its UTF-8 bytes without panicking.
        assert!((kernels::norm(&embed_text("ß日本語🙂", 32)) - 1.0).abs() < 1e-5);
    }
}

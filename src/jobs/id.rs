//! Job and batch ids: upstream's 21-character URL-safe format, but starting with the time
//! (microseconds, base 64, 9 characters) so that new ids land at the right end of the
//! primary key's index instead of on a random page, which keeps large batches fast.

use rand::Rng;

const ALPHABET: &[u8] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
const TIME_CHARS: usize = 9;
const RANDOM_CHARS: usize = 12;

/// A new id, ordered by creation time between processes (to the clock's precision), with
/// 72 random bits against collisions within the same microsecond.
pub fn new_job_id() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let mut id = String::with_capacity(TIME_CHARS + RANDOM_CHARS);
    for i in (0..TIME_CHARS).rev() {
        id.push(char::from(ALPHABET[((micros >> (6 * i)) & 63) as usize]));
    }
    let mut rng = rand::rng();
    for _ in 0..RANDOM_CHARS {
        id.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_upstream_length_and_sort_by_time() {
        let a = new_job_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_job_id();
        assert_eq!(a.len(), 21);
        assert!(a < b, "{a} !< {b}");
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
    }
}

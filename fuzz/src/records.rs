//! How targets that take several messages cut one fuzz input into them:
//! each record is a little-endian u16 length and that many bytes (a short
//! last record takes what is left), so mutations that change one message
//! leave the others intact.

/// Cuts `data` into records (see the module documentation).
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        rest = &rest[take..];
    }
    out
}

/// Joins records into one input that [`split`] cuts back into them.
///
/// Panics on a record longer than u16::MAX (seeds are small).
pub fn join<I, B>(records: I) -> Vec<u8>
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let mut out = Vec::new();
    for r in records {
        let r = r.as_ref();
        let len = u16::try_from(r.len()).expect("a seed record fits a u16 length");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(r);
    }
    out
}

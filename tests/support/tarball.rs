//! Minimal tar and gzip writers, so small layers are real `tar+gzip` blobs
//! (as `skopeo`, containerd or a mirror that inspects layers expect) without
//! pulling a compression crate into the workspace.
//!
//! The tar is POSIX ustar with regular files only and fixed metadata (mtime 0,
//! uid/gid 0, mode 0644), so the same input always gives the same digest. The
//! gzip uses deflate *stored* blocks: valid gzip that every decompressor
//! accepts, just not smaller than its input.

/// A ustar archive holding `files` (path, contents) as regular files.
///
/// Paths must be at most 100 bytes (no GNU/PAX long-name support needed here).
pub fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, contents) in files {
        assert!(path.len() <= 100, "tar path too long for ustar: {path}");
        let mut h = [0u8; 512];
        h[..path.len()].copy_from_slice(path.as_bytes());
        octal(&mut h[100..108], 0o644); // mode
        octal(&mut h[108..116], 0); // uid
        octal(&mut h[116..124], 0); // gid
        octal(&mut h[124..136], contents.len() as u64); // size
        octal(&mut h[136..148], 0); // mtime
        h[148..156].fill(b' '); // checksum placeholder
        h[156] = b'0'; // regular file
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        let cks = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(cks.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(contents);
        let pad = (512 - contents.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    // End-of-archive marker: two zero blocks.
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// Writes `value` as zero-padded octal, NUL-terminated, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    assert!(s.len() == digits, "value {value} does not fit tar field");
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

/// Gzip of `data` using uncompressed deflate blocks (RFC 1951 §3.2.4).
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    // Header: magic, CM=deflate, no flags, mtime 0, XFL 0, OS=255 (unknown).
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut blocks = data.chunks(0xffff).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        // BFINAL in bit 0, BTYPE=00 (stored); the rest of the byte is padding.
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// A `tar.gz` of `files`: the usual shape of an image layer.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    gzip_stored(&tar(files))
}

/// CRC-32 (IEEE, reflected), as gzip's trailer needs.
pub fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

//! Heap snapshot objects: what a stateful execution leaves behind and the next
//! one resumes from.
//!
//! A V8 snapshot only works with the exact V8 build, flags and external
//! references that made it; feeding it anything else crashes V8 rather than
//! failing. So every object carries a header naming the engine build, and a
//! mismatch is refused with a clear error before V8 ever sees the bytes:
//!
//! ```text
//! b"MCPV8HP1"          magic and format version
//! u16 (big endian)     length of the fingerprint
//! fingerprint          UTF-8, e.g. "mcp-v8 0.1.0; deno_core 0.413; v8 150.4.0;
//!                        flags --no-freeze-flags-after-init …; runtime 1f2e…"
//! zstd frame           the snapshot blob, with the frame's content checksum
//! ```
//!
//! The object's name (its SHA-256) covers the stored bytes; the frame's
//! checksum and a minimum size cover what they inflate to, so a damaged
//! payload under a valid name is refused here too, not fed to V8 (which
//! aborts on it).

use std::cell::RefCell;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"MCPV8HP1";
/// zstd level: snapshots are made on the request path. On a trivial heap
/// level 1 takes two thirds of level 3's time for a 4 % larger object;
/// negative levels save little more time and grow the object by 12 % or more.
const COMPRESSION_LEVEL: i32 = 1;
/// Refuse to inflate a snapshot beyond this; no heap limit allows one so big.
const MAX_SNAPSHOT_BYTES: usize = 4 << 30;
/// No V8 snapshot is smaller: its header alone (counts, checksums, the V8
/// version string, offsets) is over 100 bytes, and the smallest heap holds
/// hundreds of kilobytes.
const MIN_SNAPSHOT_BYTES: usize = 4096;

/// Why a stored heap cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeapFormatError {
    #[error("heap corrupt: {0}")]
    Corrupt(String),
    #[error(
        "heap incompatible: it was written by \"{found}\", this server is \"{expected}\"; \
         heaps only resume on the engine build that made them"
    )]
    Incompatible { found: String, expected: String },
}

/// Names this engine build: what must match for a snapshot to be restorable.
pub fn fingerprint() -> &'static str {
    static FINGERPRINT: OnceLock<String> = OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        // The snapshot refers to our ops by their index in the external
        // reference table, and to the objects the bootstrap created.
        let mut runtime = Sha256::new();
        runtime.update(super::BOOTSTRAP_JS.as_bytes());
        runtime.update(super::HEAP_SAFE_JS.as_bytes());
        let extension = super::runtime_extension();
        for op in extension.ops.iter() {
            runtime.update(op.name.as_bytes());
            runtime.update([0]);
        }
        // The sources' references follow the ops' in the table; a heap from
        // before they were references holds the sources as copies, and
        // deno_core refuses a table of another length.
        runtime.update(extension.external_references.len().to_le_bytes());
        format!(
            "mcp-v8 {}; deno_core 0.413; v8 {}; flags {}; runtime {}",
            env!("CARGO_PKG_VERSION"),
            deno_core::v8::VERSION_STRING,
            [
                super::STATEFUL_INIT_V8_FLAGS,
                super::STATEFUL_V8_FLAGS,
                super::SEALED_READ_ONLY_SPACE,
                super::v8_flags(),
            ]
            .join(" ")
            .trim_end(),
            hex::encode(&runtime.finalize()[..8])
        )
    })
}

/// Wraps a snapshot blob into a stored object: header, then the zstd frame.
pub fn encode(blob: &[u8]) -> std::io::Result<Vec<u8>> {
    let fingerprint = fingerprint().as_bytes();
    let header = MAGIC.len() + 2 + fingerprint.len();
    let bound = zstd::zstd_safe::compress_bound(blob.len());
    let mut object = Vec::with_capacity(header + bound);
    object.extend_from_slice(MAGIC);
    object.extend_from_slice(&(fingerprint.len() as u16).to_be_bytes());
    object.extend_from_slice(fingerprint);
    // The frame is written in place after the header, in one call: the
    // whole blob is at hand, so no streaming window to copy it through. The
    // worst-case capacity is reserved but only the frame's pages are touched.
    let mut frame = std::io::Cursor::new(object);
    frame.set_position(header as u64);
    COMPRESSOR.with_borrow_mut(|compressor| {
        let compressor = match compressor {
            Some(compressor) => compressor,
            None => compressor.insert(new_compressor()?),
        };
        compressor.compress_to_buffer(blob, &mut frame)
    })?;
    Ok(frame.into_inner())
}

thread_local! {
    /// The compression context of the thread, kept between snapshots: a new
    /// one allocates and clears its tables (a megabyte at level 1) each time.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
}

fn new_compressor() -> std::io::Result<zstd::bulk::Compressor<'static>> {
    let mut compressor = zstd::bulk::Compressor::new(COMPRESSION_LEVEL)?;
    compressor.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
    Ok(compressor)
}

/// Checks the header and inflates the snapshot blob.
pub fn decode(object: &[u8]) -> Result<Vec<u8>, HeapFormatError> {
    let rest = object
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| HeapFormatError::Corrupt("not an mcp-v8 heap snapshot".into()))?;
    let (length, rest) = rest
        .split_first_chunk::<2>()
        .ok_or_else(|| HeapFormatError::Corrupt("truncated header".into()))?;
    let length = u16::from_be_bytes(*length) as usize;
    if rest.len() < length {
        return Err(HeapFormatError::Corrupt("truncated header".into()));
    }
    let (found, frame) = rest.split_at(length);
    let found = String::from_utf8_lossy(found);
    if found != fingerprint() {
        return Err(HeapFormatError::Incompatible {
            found: found.into_owned(),
            expected: fingerprint().to_owned(),
        });
    }
    let mut blob = Vec::new();
    let mut decoder = zstd::stream::read::Decoder::new(frame)
        .map_err(|error| HeapFormatError::Corrupt(error.to_string()))?;
    std::io::copy(
        &mut std::io::Read::take(&mut decoder, MAX_SNAPSHOT_BYTES as u64),
        &mut blob,
    )
    .map_err(|error| HeapFormatError::Corrupt(format!("snapshot data unreadable: {error}")))?;
    if blob.len() < MIN_SNAPSHOT_BYTES {
        return Err(HeapFormatError::Corrupt(format!(
            "the snapshot is {} bytes, too short to be one",
            blob.len()
        )));
    }
    Ok(blob)
}

/// A restored snapshot blob, lent to V8 as `&'static [u8]` (deno_core's
/// `startup_snapshot` demands it, and V8 keeps pointers into it for the life of
/// the isolate) and freed when this value drops. Leaking one buffer per
/// restore would grow the worker without bound.
pub struct RestoredBlob(*mut [u8]);

impl RestoredBlob {
    pub fn new(blob: Vec<u8>) -> Self {
        Self(Box::into_raw(blob.into_boxed_slice()))
    }

    /// # Safety
    /// The caller must drop every isolate created from the returned slice
    /// before dropping `self`.
    pub unsafe fn as_static(&self) -> &'static [u8] {
        // SAFETY: the allocation lives until `drop`; the caller upholds that
        // no isolate outlives it.
        unsafe { &*self.0 }
    }
}

impl Drop for RestoredBlob {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `Box::into_raw` and is dropped once.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let blob: Vec<u8> = (0..100_000u32)
            .flat_map(|n| (n % 7).to_le_bytes())
            .collect();
        let object = encode(&blob).expect("encode");
        assert!(object.len() < blob.len() / 4, "compressed");
        assert_eq!(decode(&object).expect("decode"), blob);
    }

    #[test]
    fn the_reused_compressor_carries_nothing_from_one_heap_to_the_next() {
        let first: Vec<u8> = (0..50_000u32)
            .flat_map(|n| (n % 11).to_le_bytes())
            .collect();
        let second: Vec<u8> = (0..80_000u32).flat_map(|n| (n % 5).to_be_bytes()).collect();
        let (a, b, again) = (encode(&first), encode(&second), encode(&first));
        let (a, b, again) = (a.expect("a"), b.expect("b"), again.expect("again"));
        assert_eq!(a, again, "the same blob encodes to the same object");
        assert_eq!(decode(&a).expect("decode a"), first);
        assert_eq!(decode(&b).expect("decode b"), second);
    }

    #[test]
    fn the_fingerprint_names_every_flag_the_engine_sets() {
        // A heap made under other engine flags must be refused, not fed to V8.
        for flags in [
            super::super::STATEFUL_INIT_V8_FLAGS,
            super::super::STATEFUL_V8_FLAGS,
            super::super::SEALED_READ_ONLY_SPACE,
        ] {
            assert!(
                fingerprint().contains(flags),
                "{flags} in {}",
                fingerprint()
            );
        }
    }

    #[test]
    fn foreign_bytes_are_corrupt() {
        assert!(matches!(decode(b"hello"), Err(HeapFormatError::Corrupt(_))));
    }

    /// Incompressible bytes are stored as a raw block, where a flipped byte
    /// breaks no structure: only the frame's checksum catches it.
    #[test]
    fn a_damaged_payload_is_corrupt() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..50_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut object = encode(&noise).expect("encode");
        let middle = object.len() / 2;
        object[middle] ^= 1;
        let error = decode(&object).expect_err("damaged");
        assert!(matches!(error, HeapFormatError::Corrupt(_)), "{error}");
    }

    #[test]
    fn an_empty_snapshot_is_corrupt() {
        let object = encode(&[]).expect("encode");
        let error = decode(&object).expect_err("empty");
        assert!(error.to_string().contains("too short"), "{error}");
    }

    #[test]
    fn truncation_is_corrupt() {
        let object = encode(&[7u8; 50_000]).expect("encode");
        let error = decode(&object[..object.len() - 5]).expect_err("truncated");
        assert!(matches!(error, HeapFormatError::Corrupt(_)), "{error}");
    }

    #[test]
    fn another_build_is_incompatible() {
        let mut object = encode(b"blob").expect("encode");
        let start = MAGIC.len() + 2;
        object[start] ^= 0x20;
        let error = decode(&object).expect_err("other build");
        assert!(
            matches!(error, HeapFormatError::Incompatible { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("incompatible"));
    }
}

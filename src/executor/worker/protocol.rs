//! The messages between the server and its worker processes, and their framing.
//!
//! Frames are a 4-byte big-endian length followed by a postcard-encoded
//! message: the format `tokio_util`'s `LengthDelimitedCodec` reads by default,
//! so the async parent and the blocking child share one definition.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::engine::{ConsoleLevel, Job, Outcome};

/// Frames larger than this are refused: a corrupt length must not make either
/// side allocate gigabytes. Room for the largest message: a `Run` resuming a
/// heap of `engine::MAX_HEAP_OBJECT_BYTES` with code of up to
/// `limits.max_code_bytes` (at most 64 MiB), or a `Done` with such a heap and
/// a result of `engine::MAX_RESULT_BYTES`.
pub const MAX_FRAME_BYTES: usize = 256 * 1024 * 1024;

/// Server → worker.
#[derive(Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// Run one job; the worker answers with `Output`s and then one `Done`.
    Run { job: Job, max_output_bytes: u64 },
    /// Stop the job with this id if it is the one running.
    Cancel { execution_id: String },
}

/// Worker → server.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromWorker {
    /// V8 is initialised and the startup snapshot is built.
    Ready,
    /// One console line of the running job, sent as it is printed.
    Output { level: ConsoleLevel, text: String },
    /// The running job finished.
    Done(Outcome),
    /// The running job's outcome, from a worker that exits right after
    /// sending it because its engine cannot run another job: a fatal V8
    /// out-of-memory error, or a stateful runtime stopped while deno_core
    /// still waited on it (see `Engine::is_spent`).
    Retired(Outcome),
}

pub fn encode<T: Serialize>(message: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(message).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

/// Blocking write of one frame (the worker side).
pub fn write_frame<T: Serialize>(mut out: impl Write, message: &T) -> io::Result<()> {
    let body = encode(message)?;
    let length = u32::try_from(body.len())
        .ok()
        .filter(|&length| length as usize <= MAX_FRAME_BYTES)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "frame too large"))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&body);
    // One write per frame, so frames from two threads never interleave.
    out.write_all(&frame)
}

/// Blocking read of one frame (the worker side); `None` at a clean end of stream.
pub fn read_frame<T: DeserializeOwned>(mut input: impl Read) -> io::Result<Option<T>> {
    let mut length = [0u8; 4];
    match input.read_exact(&mut length) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let length = u32::from_be_bytes(length) as usize;
    if length > MAX_FRAME_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut body = vec![0u8; length];
    input.read_exact(&mut body)?;
    decode(&body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut wire = Vec::new();
        write_frame(
            &mut wire,
            &FromWorker::Output {
                level: ConsoleLevel::Warn,
                text: "héllo".into(),
            },
        )
        .expect("write");
        write_frame(&mut wire, &FromWorker::Done(Outcome::Cancelled)).expect("write");
        let mut input = wire.as_slice();
        let first: FromWorker = read_frame(&mut input).expect("read").expect("frame");
        assert!(
            matches!(first, FromWorker::Output { level: ConsoleLevel::Warn, ref text } if text == "héllo")
        );
        let second: FromWorker = read_frame(&mut input).expect("read").expect("frame");
        assert!(matches!(second, FromWorker::Done(Outcome::Cancelled)));
        assert!(read_frame::<FromWorker>(&mut input).expect("eof").is_none());
    }

    #[test]
    fn oversized_length_is_refused() {
        let wire = u32::MAX.to_be_bytes();
        assert!(read_frame::<FromWorker>(wire.as_slice()).is_err());
    }
}

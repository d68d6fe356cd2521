//! Newline-delimited JSON-RPC over a byte stream (stdin and stdout), the
//! stdio framing of MCP.
//!
//! In place of rmcp's `AsyncRwTransport` because of what it does with a line
//! of JSON it cannot read: it answers "Invalid request" without the
//! request's id, which the client cannot match to the request it is waiting
//! on. Here such a line is answered as `POST /mcp` answers it
//! ([`message::read_message`]), except a notification or a response, which
//! JSON-RPC never answers. A line that is not JSON at all is logged and skipped, as rmcp and
//! the other official SDKs do: answering it could start an endless exchange
//! of errors with a peer that writes its logs to the same pipe.
//!
//! Both directions are cancel-safe, because rmcp's service loop polls
//! `receive` in a `select!` and drops it whenever another branch wins: reads
//! go through a `FramedRead`, which keeps a partial line in its buffer, and
//! every write is made by one writer task, so that no dropped future can
//! leave half a line on stdout.

use std::io;

use bytes::{Buf, BytesMut};
use futures::StreamExt;
use rmcp::RoleServer;
use rmcp::model::{ClientJsonRpcMessage, ErrorCode, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Decoder, FramedRead};

use super::message;

/// A line to write, and where to report how writing it went.
type Write = (Vec<u8>, oneshot::Sender<io::Result<()>>);

/// MCP messages, one JSON object per line, read from `R` and written to `W`.
pub struct JsonLines<R> {
    lines: FramedRead<R, LineDecoder>,
    writes: mpsc::UnboundedSender<Write>,
    writer: Option<tokio::task::JoinHandle<()>>,
    max_line_bytes: usize,
}

impl<R: AsyncRead> JsonLines<R> {
    /// Reads lines of at most `max_line_bytes` (longer ones are dropped and
    /// logged: their id cannot be read without buffering them whole) and
    /// starts the task that writes to `writer`. Must run inside a Tokio
    /// runtime.
    pub fn new<W>(reader: R, writer: W, max_line_bytes: usize) -> Self
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (writes, queue) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_lines(writer, queue));
        Self {
            lines: FramedRead::new(reader, LineDecoder::new(max_line_bytes)),
            writes,
            writer: Some(writer),
            max_line_bytes,
        }
    }
}

/// Writes each queued line whole and flushes it; ends when every sender is
/// gone (the transport was dropped or closed).
async fn write_lines<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut queue: mpsc::UnboundedReceiver<Write>,
) {
    while let Some((line, done)) = queue.recv().await {
        let written = async {
            writer.write_all(&line).await?;
            writer.flush().await
        }
        .await;
        // The sender may have stopped waiting; the line is out either way.
        let _ = done.send(written);
    }
    let _ = writer.shutdown().await;
}

impl<R> Transport<RoleServer> for JsonLines<R>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    type Error = io::Error;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writes = self.writes.clone();
        async move {
            let mut line = serde_json::to_vec(&item)?;
            line.push(b'\n');
            let (done, written) = oneshot::channel();
            writes.send((line, done)).map_err(|_| closed())?;
            written.await.map_err(|_| closed())?
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            let line = match self.lines.next().await? {
                Ok(Line::Complete(line)) => line,
                Ok(Line::Oversized) => {
                    tracing::warn!(
                        max_bytes = self.max_line_bytes,
                        "dropped a message longer than transport.max_body_bytes"
                    );
                    continue;
                }
                Err(error) => {
                    tracing::error!(%error, "reading stdin failed; ending the session");
                    return None;
                }
            };
            let line = trimmed(&line);
            if line.is_empty() {
                continue;
            }
            match message::read_message(line) {
                Ok(message) => return Some(message),
                Err(problem) if problem.unanswered || problem.code == ErrorCode::PARSE_ERROR => {
                    tracing::warn!(message = %problem.message, "skipped an unreadable line");
                }
                Err(problem) => {
                    tracing::warn!(message = %problem.message, id = %problem.id, "answered an unreadable message");
                    let mut answer = problem.response().to_string().into_bytes();
                    answer.push(b'\n');
                    // Waiting for the write keeps a client that sends bad
                    // lines without reading the answers from queueing them
                    // without bound. Should this future be dropped while it
                    // waits, the answer is written all the same.
                    let (done, written) = oneshot::channel();
                    if self.writes.send((answer, done)).is_err()
                        || !matches!(written.await, Ok(Ok(())))
                    {
                        return None;
                    }
                }
            }
        }
    }

    /// Returns once everything queued is written and the writer shut down.
    async fn close(&mut self) -> Result<(), Self::Error> {
        // The writer task ends once this last sender is gone.
        let (writes, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.writes, writes));
        if let Some(writer) = self.writer.take() {
            writer.await.map_err(io::Error::other)?;
        }
        Ok(())
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the transport is closed")
}

/// `line` without its line ending and a leading UTF-8 byte order mark.
fn trimmed(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

/// One frame of the input.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line, with its `\n` if it had one.
    Complete(BytesMut),
    /// A line longer than the bound, whose bytes were skipped.
    Oversized,
}

/// Splits input at `\n`, skipping lines longer than a bound instead of
/// failing: `FramedRead` ends the stream after any decoder error, and one
/// long line must not end the session.
struct LineDecoder {
    max_bytes: usize,
    /// Skipping the rest of an oversized line up to its `\n`.
    discarding: bool,
    /// How far the buffer has been searched for `\n` already.
    searched: usize,
}

impl LineDecoder {
    fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            discarding: false,
            searched: 0,
        }
    }
}

impl Decoder for LineDecoder {
    type Item = Line;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Line>> {
        loop {
            let newline = buf[self.searched..]
                .iter()
                .position(|byte| *byte == b'\n')
                .map(|at| at + self.searched);
            self.searched = 0;
            match newline {
                Some(at) if self.discarding => {
                    buf.advance(at + 1);
                    self.discarding = false;
                }
                None if self.discarding => {
                    buf.clear();
                    return Ok(None);
                }
                Some(at) if at <= self.max_bytes => {
                    return Ok(Some(Line::Complete(buf.split_to(at + 1))));
                }
                Some(at) => {
                    buf.advance(at + 1);
                    return Ok(Some(Line::Oversized));
                }
                None if buf.len() > self.max_bytes => {
                    buf.clear();
                    self.discarding = true;
                    return Ok(Some(Line::Oversized));
                }
                None => {
                    self.searched = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    /// A last line without `\n` is a message all the same.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> io::Result<Option<Line>> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        if buf.is_empty() || self.discarding {
            buf.clear();
            return Ok(None);
        }
        self.searched = 0;
        Ok(Some(Line::Complete(buf.split())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max_bytes: usize, chunk: usize) -> Vec<Line> {
        let mut decoder = LineDecoder::new(max_bytes);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(frame) = decoder.decode(&mut buf).expect("decode") {
                frames.push(frame);
            }
        }
        while let Some(frame) = decoder.decode_eof(&mut buf).expect("decode_eof") {
            frames.push(frame);
        }
        frames
    }

    fn line(text: &str) -> Line {
        Line::Complete(BytesMut::from(text))
    }

    #[test]
    fn lines_are_split_however_the_input_arrives() {
        let input = b"{\"a\":1}\n\n{\"b\":2}\r\n{\"c\":3}";
        for chunk in [1, 2, 3, 7, 100] {
            assert_eq!(
                frames(input, 64, chunk),
                [
                    line("{\"a\":1}\n"),
                    line("\n"),
                    line("{\"b\":2}\r\n"),
                    line("{\"c\":3}")
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn an_oversized_line_is_skipped_and_reading_goes_on() {
        let input = b"short\n0123456789abcdef\nnext\n0123456789abcdef";
        for chunk in [1, 4, 100] {
            assert_eq!(
                frames(input, 8, chunk),
                [
                    line("short\n"),
                    Line::Oversized,
                    line("next\n"),
                    Line::Oversized
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn byte_order_mark_and_line_ending_are_trimmed() {
        assert_eq!(trimmed(b"\xEF\xBB\xBF{}\r\n"), b"{}");
        assert_eq!(trimmed(b"{}"), b"{}");
    }
}

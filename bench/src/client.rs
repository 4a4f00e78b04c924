//! A small HTTP/1.1 client over raw TCP, cheap enough that one core of
//! load generator can keep one core of server busy: requests are plain
//! byte strings, responses are parsed in place, and every byte read off
//! the socket is counted (for the over-the-wire figures).

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The status line and headers of a response.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    /// Names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    pub content_length: Option<usize>,
    pub chunked: bool,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Response {
    pub head: Head,
    /// The body after transfer decoding (still content-encoded). Empty
    /// when the caller asked not to keep it.
    pub body: Vec<u8>,
    /// Bytes this response took on the wire: status line, headers, body
    /// and chunk framing.
    pub wire_bytes: usize,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// One keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unread data is `buf[pos..len]`.
    pos: usize,
    len: usize,
    /// Bytes consumed by the parser since the connection opened.
    consumed: usize,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        Self::connect_with_buffer(addr, 16 * 1024).await
    }

    /// A connection with a smaller read buffer, for holding thousands of
    /// event streams at once. The buffer grows when a message needs it.
    pub async fn connect_with_buffer(addr: SocketAddr, buffer: usize) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: vec![0; buffer.max(256)], pos: 0, len: 0, consumed: 0 })
    }

    /// Bytes read and parsed since the connection opened.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    pub async fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.write_all(request).await
    }

    /// Reads more from the socket; an error at end of stream.
    async fn fill(&mut self) -> io::Result<()> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        } else if self.pos > 0 && self.len == self.buf.len() {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            let bigger = self.buf.len() * 2;
            self.buf.resize(bigger, 0);
        }
        let n = self.stream.read(&mut self.buf[self.len..]).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        self.len += n;
        Ok(())
    }

    fn advance(&mut self, n: usize) {
        self.pos += n;
        self.consumed += n;
    }

    /// Reads a line ending in CRLF; returns it without the CRLF.
    async fn line(&mut self) -> io::Result<String> {
        loop {
            let unread = &self.buf[self.pos..self.len];
            if let Some(at) = unread.windows(2).position(|w| w == b"\r\n") {
                let text = String::from_utf8_lossy(&unread[..at]).into_owned();
                self.advance(at + 2);
                return Ok(text);
            }
            if unread.len() > 64 * 1024 {
                return Err(invalid("a header or chunk line over 64 KiB"));
            }
            self.fill().await?;
        }
    }

    pub async fn read_head(&mut self) -> io::Result<Head> {
        let status_line = self.line().await?;
        let mut parts = status_line.splitn(3, ' ');
        let (version, code) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        if !version.starts_with("HTTP/1.") {
            return Err(invalid(format!("not an HTTP/1 status line: {status_line:?}")));
        }
        let status = code.parse().map_err(|_| invalid(format!("bad status line {status_line:?}")))?;
        let mut head = Head { status, headers: Vec::new(), content_length: None, chunked: false };
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                return Ok(head);
            }
            let (name, value) =
                line.split_once(':').ok_or_else(|| invalid(format!("bad header {line:?}")))?;
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
            match name.as_str() {
                "content-length" => {
                    head.content_length = Some(value.parse().map_err(|_| invalid("bad content-length"))?)
                }
                "transfer-encoding" => head.chunked = value.to_ascii_lowercase().contains("chunked"),
                _ => {}
            }
            head.headers.push((name, value));
        }
    }

    /// Reads `n` body bytes, passing each piece to `sink`.
    async fn take(&mut self, mut n: usize, sink: &mut impl FnMut(&[u8])) -> io::Result<()> {
        while n > 0 {
            if self.pos == self.len {
                self.fill().await?;
            }
            let k = n.min(self.len - self.pos);
            sink(&self.buf[self.pos..self.pos + k]);
            self.advance(k);
            n -= k;
        }
        Ok(())
    }

    /// Reads one chunk of a chunked body, passing its data to `sink`.
    /// `false` once the last (empty) chunk and the trailers are read.
    pub async fn chunk(&mut self, sink: &mut impl FnMut(&[u8])) -> io::Result<bool> {
        let size_line = self.line().await?;
        let hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| invalid(format!("bad chunk size {hex:?}")))?;
        if size == 0 {
            while !self.line().await?.is_empty() {}
            return Ok(false);
        }
        self.take(size, sink).await?;
        if !self.line().await?.is_empty() {
            return Err(invalid("chunk data longer than its size"));
        }
        Ok(true)
    }

    /// Reads a whole response to a request that was already sent.
    pub async fn read_response(&mut self, keep_body: bool, head_request: bool) -> io::Result<Response> {
        let start = self.consumed;
        let head = self.read_head().await?;
        let mut body = Vec::new();
        let mut sink = |data: &[u8]| {
            if keep_body {
                body.extend_from_slice(data);
            }
        };
        let bodiless = head_request || head.status == 204 || head.status == 304 || head.status / 100 == 1;
        if bodiless {
        } else if head.chunked {
            while self.chunk(&mut sink).await? {}
        } else if let Some(n) = head.content_length {
            self.take(n, &mut sink).await?;
        } else {
            return Err(invalid("a response with neither content-length nor chunked encoding"));
        }
        Ok(Response { head, body, wire_bytes: self.consumed - start })
    }

    /// Sends a request and reads its response.
    pub async fn roundtrip(&mut self, request: &[u8], keep_body: bool) -> io::Result<Response> {
        self.send(request).await?;
        self.read_response(keep_body, false).await
    }
}

/// `GET path` with the given extra header lines (each ending in CRLF).
pub fn get(host: &SocketAddr, path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n").into_bytes()
}

/// A form POST as htmx sends it for a widget change.
pub fn post_form(host: &SocketAddr, path: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nHX-Request: true\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Finds the `id:` field of each server-sent event in a byte stream fed
/// in arbitrary pieces. Other lines are skipped without being copied.
#[derive(Default)]
pub struct SseIds {
    line: Vec<u8>,
    /// The current line is too long to be an `id:` line.
    skipping: bool,
}

impl SseIds {
    const MAX_ID_LINE: usize = 32;

    pub fn feed(&mut self, mut data: &[u8], on_id: &mut impl FnMut(u64)) {
        while !data.is_empty() {
            let (piece, ends_line) = match find_newline(data) {
                Some(at) => (&data[..at], true),
                None => (data, false),
            };
            if !self.skipping {
                if self.line.len() + piece.len() > Self::MAX_ID_LINE {
                    self.skipping = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(piece);
                }
            }
            if ends_line {
                if !self.skipping {
                    let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
                    if let Some(id) = line.strip_prefix(b"id:")
                        && let Some(id) = std::str::from_utf8(id).ok().and_then(|t| t.trim().parse().ok())
                    {
                        on_id(id);
                    }
                }
                self.line.clear();
                self.skipping = false;
                data = &data[piece.len() + 1..];
            } else {
                data = &[];
            }
        }
    }
}

/// The first `\n`, eight bytes at a time: events are about 1 KB each and
/// the client reads 10,000 of them per change.
fn find_newline(data: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = ONES * b'\n' as u64;
    let mut i = 0;
    while i + 8 <= data.len() {
        let word = u64::from_le_bytes(data[i..i + 8].try_into().expect("eight bytes"));
        let x = word ^ NL;
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    data[i..].iter().position(|&b| b == b'\n').map(|at| i + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_search() {
        for text in ["", "abc", "abcdefgh\n", "\n", "abcdefghijklmnop\nq", "0123456\n"] {
            assert_eq!(find_newline(text.as_bytes()), text.find('\n'), "{text:?}");
        }
    }

    #[test]
    fn ids_across_pieces() {
        let stream =
            b"retry: 2000\n\nevent: state\nid: 41\ndata: <p>a long line</p>\n\nevent: state\nid: 42\n";
        for split in 1..stream.len() {
            let mut ids = Vec::new();
            let mut scan = SseIds::default();
            scan.feed(&stream[..split], &mut |id| ids.push(id));
            scan.feed(&stream[split..], &mut |id| ids.push(id));
            assert_eq!(ids, [41, 42], "split at {split}");
        }
    }
}

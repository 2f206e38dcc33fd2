//! Moving messages across a Pingora [`Session`]: the request body in, under a size limit and a
//! total deadline; the service's response out, header first, then frame by frame.

use std::pin::pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use http_body::{Body, SizeHint};
use http_body_util::{BodyExt, Full};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::{Error, ErrorType};

use crate::layer::BridgeError;

/// Why a request body was refused before the service saw it.
#[derive(Debug)]
pub(super) enum Refusal {
    /// The body is, or declares to be, larger than the limit.
    TooLarge { limit: usize },
    /// The whole body did not arrive within the deadline.
    Deadline(Duration),
    /// The body could not be read (bad chunk framing, a read that timed out, a broken connection).
    Unreadable(Box<Error>),
    /// The client cannot be written to, so there is nobody left to answer.
    Gone(Box<Error>),
}

impl Refusal {
    /// What the service is told, or the error to hand back to Pingora when nobody is left to
    /// answer.
    pub(super) fn into_refused(self) -> Result<BridgeError, Box<Error>> {
        Ok(match self {
            Refusal::TooLarge { limit } => BridgeError::PayloadTooLarge(limit),
            Refusal::Deadline(deadline) => BridgeError::BodyTimeout(deadline),
            // Pingora's own per-read timeout: the client went quiet mid-body.
            Refusal::Unreadable(e) if matches!(e.etype(), ErrorType::ReadTimedout) => {
                BridgeError::BodyStalled
            }
            Refusal::Unreadable(_) => BridgeError::BodyUnreadable,
            Refusal::Gone(e) => return Err(e),
        })
    }
}

/// The most body buffer reserved from a declared `Content-Length` before the bytes arrive: typical
/// requests fit, larger ones grow the buffer as they are read.
const UPFRONT_CAPACITY: usize = 64 * 1024;

/// Reads the whole request body: at most `limit` bytes, all of it within `deadline`.
///
/// A declared `Content-Length` over the limit is refused before anything is read or any
/// `100 Continue` is sent, so a well-behaved client never uploads it.
pub(super) async fn read_request(
    session: &mut Session,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, Refusal> {
    let capacity = upfront_capacity(declared_length(session.req_header()), limit)?;
    match tokio::time::timeout(deadline, collect(session, limit, capacity)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(Refusal::Deadline(deadline)),
    }
}

/// The body buffer to reserve for a declared length, or the refusal of a length over `limit`.
fn upfront_capacity(declared: Option<u64>, limit: usize) -> Result<usize, Refusal> {
    match declared {
        Some(length) if length > limit as u64 => Err(Refusal::TooLarge { limit }),
        // Checked against the limit just above, so it fits in a usize. Only what has arrived
        // is trusted beyond the first 64 KiB: a client declaring a megabyte and sending nothing
        // must not make every connection reserve one.
        Some(length) => Ok(usize::try_from(length)
            .unwrap_or(limit)
            .min(UPFRONT_CAPACITY)),
        None => Ok(0),
    }
}

async fn collect(session: &mut Session, limit: usize, capacity: usize) -> Result<Bytes, Refusal> {
    if expects_continue(session.req_header()) && !session.is_body_empty() {
        session
            .write_continue_response()
            .await
            .map_err(Refusal::Gone)?;
    }
    let mut body = BytesMut::with_capacity(capacity);
    while let Some(chunk) = session
        .read_request_body()
        .await
        .map_err(Refusal::Unreadable)?
    {
        if chunk.len() > limit.saturating_sub(body.len()) {
            return Err(Refusal::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The `Content-Length` that frames the body; none for a chunked body, where it is ignored.
fn declared_length(header: &RequestHeader) -> Option<u64> {
    if header.headers.contains_key(TRANSFER_ENCODING) {
        return None;
    }
    header
        .headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether the client waits for `100 Continue` before it sends the body (HTTP/1.1 only).
pub(super) fn expects_continue(header: &RequestHeader) -> bool {
    header.version == Version::HTTP_11
        && header
            .headers
            .get(EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The request the service sees: Pingora's request header and the body read in full.
pub(super) fn to_http_request(header: &RequestHeader, body: Bytes) -> http::Request<Full<Bytes>> {
    let mut request = http::Request::new(Full::new(body));
    *request.method_mut() = header.method.clone();
    *request.uri_mut() = header.uri.clone();
    *request.version_mut() = header.version;
    *request.headers_mut() = header.headers.clone();
    request
}

/// Writes the service's response: the header, then each body frame as the body produces it, so an
/// event stream leaves chunk by chunk and a slow client slows the producer down (backpressure).
pub(super) async fn write_response<B>(
    session: &mut Session,
    response: http::Response<B>,
) -> pingora::Result<()>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut parts, body) = response.into_parts();
    let mut body = pin!(body);
    let bodiless = session.req_header().method == Method::HEAD
        || matches!(
            parts.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        )
        || parts.status.is_informational();
    let http1 = !session.is_http2();
    if http1 {
        // Pingora's HTTP/1 writer can only serialise 1.x status lines.
        parts.version = Version::HTTP_11;
    }
    if !bodiless {
        let can_chunk = http1 && session.req_header().version == Version::HTTP_11;
        frame(&mut parts.headers, body.size_hint(), can_chunk);
    }
    let header = Box::new(ResponseHeader::from(parts));
    let end = bodiless || body.is_end_stream();
    session.write_response_header(header, end).await?;
    if end {
        return session.write_response_body(None, true).await;
    }
    loop {
        let Some(frame) = body.frame().await else {
            return session.write_response_body(None, true).await;
        };
        let frame = frame
            .map_err(|e| Error::because(ErrorType::InternalError, "bridge response body", e))?;
        let end = body.is_end_stream();
        // Trailers have nowhere to go on HTTP/1 (Pingora drops them too): only data is written.
        let data = frame.into_data().unwrap_or_default();
        session.write_response_body(Some(data), end).await?;
        if end {
            return Ok(());
        }
    }
}

/// Makes sure an HTTP/1 response is not close-delimited, which would end keep-alive: a body of
/// known size gets its `Content-Length`, any other body `Transfer-Encoding: chunked` where the
/// client understands it. An HTTP/1.0 client gets a close-delimited body, its only option.
fn frame(headers: &mut HeaderMap, size: SizeHint, can_chunk: bool) {
    if headers.contains_key(CONTENT_LENGTH) || headers.contains_key(TRANSFER_ENCODING) {
        return;
    }
    if let Some(length) = size.exact() {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    } else if can_chunk {
        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lines: &[(&str, &str)]) -> RequestHeader {
        let mut header = RequestHeader::build("POST", b"/v1/completions", None).unwrap();
        for (name, value) in lines {
            header.append_header(name.to_string(), *value).unwrap();
        }
        header
    }

    #[test]
    fn a_declared_length_reserves_at_most_the_upfront_capacity() {
        let mib = 1024 * 1024;
        assert_eq!(upfront_capacity(None, mib).ok(), Some(0));
        assert_eq!(upfront_capacity(Some(1000), mib).ok(), Some(1000));
        assert_eq!(
            upfront_capacity(Some(mib as u64), mib).ok(),
            Some(UPFRONT_CAPACITY)
        );
        assert!(matches!(
            upfront_capacity(Some(mib as u64 + 1), mib),
            Err(Refusal::TooLarge { limit }) if limit == mib
        ));
    }

    #[test]
    fn declared_length_ignores_chunked_bodies() {
        assert_eq!(
            declared_length(&request(&[("content-length", "12")])),
            Some(12)
        );
        assert_eq!(declared_length(&request(&[])), None);
        let chunked = request(&[("content-length", "12"), ("transfer-encoding", "chunked")]);
        assert_eq!(declared_length(&chunked), None);
    }

    #[test]
    fn expect_continue_is_case_insensitive() {
        assert!(expects_continue(&request(&[("expect", "100-Continue")])));
        assert!(!expects_continue(&request(&[("expect", "something-else")])));
        assert!(!expects_continue(&request(&[])));
    }

    #[test]
    fn unknown_length_is_chunked_known_length_is_counted() {
        let mut headers = HeaderMap::new();
        frame(&mut headers, SizeHint::new(), true);
        assert_eq!(headers[TRANSFER_ENCODING], "chunked");

        let mut headers = HeaderMap::new();
        frame(&mut headers, SizeHint::with_exact(7), true);
        assert_eq!(headers[CONTENT_LENGTH], "7");
        assert!(!headers.contains_key(TRANSFER_ENCODING));

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(3));
        frame(&mut headers, SizeHint::new(), true);
        assert!(!headers.contains_key(TRANSFER_ENCODING));

        let mut headers = HeaderMap::new();
        frame(&mut headers, SizeHint::new(), false);
        assert!(headers.is_empty());
    }

    #[test]
    fn request_keeps_method_uri_version_and_headers() {
        let header = request(&[("authorization", "Bearer k"), ("x-a", "1"), ("x-a", "2")]);
        let request = to_http_request(&header, Bytes::from_static(b"{}"));
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri(), "/v1/completions");
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.headers().get_all("x-a").iter().count(), 2);
        assert_eq!(request.headers()["authorization"], "Bearer k");
    }
}

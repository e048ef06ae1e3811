//! One HTTP/1.1 request over an open connection with hyper's client connection API: the
//! response head (bounded in size and header count) and a bounded read of the body.

use std::collections::BTreeMap;
use std::error::Error as _;

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, Version};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};
use url::{Position, Url};

use super::connect::{Io, classify_io, timed_out};
use super::{Failure, FailureKind, Hop, HttpMethod, HttpResponse, elapsed_ms};
use crate::text::truncate_chars;

/// Largest response head (status line and headers) accepted.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most response headers accepted.
pub(crate) const MAX_HEADERS: usize = 128;
/// Most body bytes read; the rest is left unread and the connection dropped.
pub(crate) const MAX_BODY_BYTES: u64 = 1024 * 1024;
const PREVIEW_BYTES: usize = 2048;
const PREVIEW_CHARS: usize = 512;
const MAX_HEADER_VALUE_CHARS: usize = 256;

/// Response headers reported when present.
const HEADERS_OF_INTEREST: &[&str] = &[
    "age",
    "alt-svc",
    "cache-control",
    "content-encoding",
    "content-length",
    "content-type",
    "date",
    "etag",
    "last-modified",
    "location",
    "retry-after",
    "server",
    "strict-transport-security",
    "transfer-encoding",
    "via",
    "www-authenticate",
];

/// What the redirect logic needs from a response.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub status: u16,
    pub location: Option<String>,
}

/// Aborts the connection task when the exchange ends or is dropped (timeout, cancellation).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends `method url` over `stream` and reads the answer into `hop.http`.
pub(crate) async fn exchange(
    stream: Box<dyn Io>,
    method: HttpMethod,
    url: &Url,
    deadline: Instant,
    hop: &mut Hop,
) -> Result<ResponseHead, Failure> {
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| http_failure(&e, "setting up the HTTP connection"))?;
    // Errors of the connection task also surface through `send_request` and the body.
    let _connection = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let request = Request::builder()
        .method(match method {
            HttpMethod::Get => Method::GET,
            HttpMethod::Head => Method::HEAD,
        })
        .uri(&url[Position::BeforePath..Position::AfterQuery])
        .header(
            header::HOST,
            &url[Position::BeforeHost..Position::AfterPort],
        )
        .header(
            header::USER_AGENT,
            concat!("mcp-foundry-devops/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, "*/*")
        .header(header::CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| Failure::new(FailureKind::Other, format!("cannot build the request: {e}")))?;
    let sent = Instant::now();
    let response = match timeout_at(deadline, sender.send_request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => return Err(http_failure(&error, "waiting for the response")),
        Err(_) => return Err(timed_out("while waiting for the response head")),
    };
    hop.timing.first_byte_ms = Some(elapsed_ms(sent));
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let http = hop.http.insert(HttpResponse {
        method,
        status: status.as_u16(),
        reason: reason_phrase(&response),
        version: version_name(response.version()),
        headers: headers_of_interest(response.headers()),
        header_count: response.headers().len(),
        body_bytes: 0,
        body_truncated: false,
        body_preview: None,
    });
    let head = ResponseHead {
        status: status.as_u16(),
        location,
    };
    if method == HttpMethod::Head {
        return Ok(head);
    }
    let mut body = response.into_body();
    let mut preview = Vec::new();
    loop {
        let frame = match timeout_at(deadline, body.frame()).await {
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(error))) => return Err(http_failure(&error, "reading the body")),
            Err(_) => return Err(timed_out("while reading the body")),
        };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let room = PREVIEW_BYTES.saturating_sub(preview.len());
        preview.extend_from_slice(&data[..data.len().min(room)]);
        http.body_bytes += data.len() as u64;
        if http.body_bytes > MAX_BODY_BYTES {
            http.body_truncated = true;
            break;
        }
    }
    http.body_preview = text_preview(&preview);
    Ok(head)
}

fn reason_phrase<B>(response: &hyper::Response<B>) -> Option<String> {
    match response.extensions().get::<hyper::ext::ReasonPhrase>() {
        Some(reason) => Some(String::from_utf8_lossy(reason.as_bytes()).into_owned()),
        None => response.status().canonical_reason().map(str::to_owned),
    }
}

fn version_name(version: Version) -> String {
    match version {
        Version::HTTP_10 => "HTTP/1.0".to_owned(),
        Version::HTTP_11 => "HTTP/1.1".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The headers of [`HEADERS_OF_INTEREST`]; repeated headers are joined with ", ".
fn headers_of_interest(headers: &HeaderMap) -> BTreeMap<String, String> {
    HEADERS_OF_INTEREST
        .iter()
        .filter_map(|name| {
            let values: Vec<String> = headers
                .get_all(*name)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .collect();
            (!values.is_empty()).then(|| {
                (
                    (*name).to_owned(),
                    truncate_chars(&values.join(", "), MAX_HEADER_VALUE_CHARS),
                )
            })
        })
        .collect()
}

/// The start of the body as text, or `None` for an empty or binary body.
fn text_preview(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes.contains(&0) {
        return None;
    }
    // A cut in the middle of a UTF-8 sequence at the end is not a sign of binary data.
    let valid = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) if error.error_len().is_none() => {
            // invariant: valid_up_to() is a char boundary of a valid prefix.
            std::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return None,
    };
    Some(truncate_chars(valid, PREVIEW_CHARS))
}

/// A hyper error as a failure, with the I/O cause when there is one.
fn http_failure(error: &hyper::Error, during: &str) -> Failure {
    if let Some(io_error) = error
        .source()
        .and_then(|source| source.downcast_ref::<std::io::Error>())
    {
        if io_error.kind() == std::io::ErrorKind::UnexpectedEof {
            return Failure::new(
                FailureKind::Protocol,
                format!("the server closed the connection early while {during} ({io_error})"),
            );
        }
        return Failure::new(
            classify_io(io_error),
            format!("connection failed while {during}: {io_error}"),
        );
    }
    let detail = if error.is_parse_too_large() {
        format!(
            "the response head is larger than {} KiB or has more than {MAX_HEADERS} headers",
            MAX_HEAD_BYTES / 1024
        )
    } else if error.is_parse() {
        format!("the answer is not valid HTTP/1.x ({error}); is this port speaking HTTP?")
    } else if error.is_incomplete_message() {
        "the server closed the connection before the response was complete".to_owned()
    } else {
        error.to_string()
    };
    let kind = if error.is_parse() || error.is_incomplete_message() {
        FailureKind::Protocol
    } else {
        FailureKind::Other
    };
    Failure::new(kind, format!("{detail} (while {during})"))
}

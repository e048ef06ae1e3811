//! Endpoint checks against real local servers: HTTP and HTTPS (certificates made in the test),
//! redirects, slow and oversized answers, refused connections and the address policy.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::test_servers::{self, Reply, TestCa, http, https, redirect, response};
use super::*;

fn checker(policy: AddressPolicy, ca: Option<&TestCa>) -> EndpointChecker {
    EndpointChecker {
        policy,
        trust: TlsTrust::with_extra_anchors(ca.map(TestCa::certificate).into_iter().collect())
            .unwrap(),
        also_refused: Vec::new(),
    }
}

fn url_params(url: &str) -> CheckEndpointParams {
    CheckEndpointParams {
        url: Some(url.to_owned()),
        timeout_ms: Some(5_000),
        ..CheckEndpointParams::default()
    }
}

async fn check_with(checker: &EndpointChecker, params: CheckEndpointParams) -> EndpointReport {
    checker.check(&EndpointRequest::new(params).unwrap()).await
}

async fn check_url(url: &str) -> EndpointReport {
    check_with(&checker(AddressPolicy::Any, None), url_params(url)).await
}

fn ok_response() -> Reply {
    response(
        "200 OK",
        &[
            ("Content-Type", "application/json"),
            ("Server", "test"),
            ("X-Unlisted", "hidden"),
        ],
        r#"{"status":"up"}"#,
    )
}

/// A port that was just free: bind, read the port, drop the listener.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn http_get_reports_status_headers_body_and_timings() {
    let server = http(|_| ok_response()).await;
    let report = check_url(&server.url("http", "/health?x=1#frag")).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.status, Some(200));
    assert_eq!(report.hops.len(), 1);
    let hop = &report.hops[0];
    assert_eq!(
        hop.address.as_deref(),
        Some(server.addr.to_string().as_str())
    );
    assert!(hop.timing.dns_ms.is_none(), "an IP address needs no lookup");
    assert!(hop.timing.connect_ms.is_some() && hop.timing.first_byte_ms.is_some());
    assert!(hop.tls.is_none());
    let http = hop.http.as_ref().unwrap();
    assert_eq!(http.reason.as_deref(), Some("OK"));
    assert_eq!(http.version, "HTTP/1.1");
    assert_eq!(http.headers["content-type"], "application/json");
    assert_eq!(http.headers["server"], "test");
    assert!(!http.headers.contains_key("x-unlisted"));
    assert_eq!(http.body_bytes, 15);
    assert_eq!(http.body_preview.as_deref(), Some(r#"{"status":"up"}"#));
    let request = &server.requests.lock().unwrap()[0];
    assert!(
        request.starts_with("GET /health?x=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("host: {}\r\n", server.addr)),
        "{request}"
    );
}

#[tokio::test]
async fn head_requests_read_no_body_and_error_statuses_are_not_ok() {
    let server =
        http(|_| response("503 Service Unavailable", &[("Retry-After", "5")], "down")).await;
    let mut params = url_params(&server.url("http", "/"));
    params.method = HttpMethod::Head;
    let report = check_with(&checker(AddressPolicy::Any, None), params).await;
    assert!(!report.ok);
    assert_eq!(report.failure, None, "a 503 is an answer, not a failure");
    assert_eq!(report.status, Some(503));
    let http = report.hops[0].http.as_ref().unwrap();
    assert_eq!(http.headers["retry-after"], "5");
    assert_eq!(http.body_bytes, 0);
    assert!(server.requests.lock().unwrap()[0].starts_with("HEAD / "));
}

#[tokio::test]
async fn https_with_a_trusted_certificate_reports_session_and_expiry() {
    let ca = TestCa::new();
    let identity = ca.issue(&["localhost", "127.0.0.1"], (-1, 31));
    let server = https(&identity, |_| ok_response()).await;
    let checker = checker(AddressPolicy::Any, Some(&ca));
    for url in [
        server.url("https", "/"),
        format!("https://localhost:{}/", server.port()),
    ] {
        let report = check_with(&checker, url_params(&url)).await;
        assert!(report.ok, "{url}: {report:#?}");
        let hop = &report.hops[0];
        let tls = hop.tls.as_ref().unwrap();
        assert!(tls.verified);
        assert_eq!(tls.version.as_deref(), Some("TLS 1.3"));
        assert_eq!(tls.alpn.as_deref(), Some("http/1.1"));
        assert!(tls.cipher_suite.as_deref().unwrap().starts_with("TLS13_"));
        let certificate = tls.certificate.as_ref().unwrap();
        assert_eq!(certificate.expires_in_days, 30, "{certificate:?}");
        assert_eq!(certificate.subject, "CN=localhost");
        assert_eq!(certificate.issuer, "CN=mcp-foundry test CA");
        assert_eq!(certificate.names, ["localhost", "127.0.0.1"]);
        assert!(hop.timing.tls_ms.is_some());
        assert_eq!(hop.http.as_ref().unwrap().status, 200);
    }
}

#[tokio::test]
async fn certificate_problems_are_results_with_the_reason() {
    let ca = TestCa::new();
    let checker = checker(AddressPolicy::Any, Some(&ca));
    let cases = [
        (
            ca.issue(&["127.0.0.1"], (-30, -2)),
            CertificateProblem::Expired,
            "expired",
        ),
        (
            ca.issue(&["127.0.0.1"], (5, 30)),
            CertificateProblem::NotYetValid,
            "not valid yet",
        ),
        (
            ca.issue(&["other.test"], (-1, 30)),
            CertificateProblem::WrongHost,
            "other.test",
        ),
        (
            test_servers::self_signed(&["127.0.0.1"]),
            CertificateProblem::UnknownIssuer,
            "--ca-file",
        ),
        (
            ca.as_identity(),
            CertificateProblem::CaUsedAsLeaf,
            "CA:FALSE",
        ),
    ];
    for (identity, problem, mentioned) in cases {
        let server = https(&identity, |_| ok_response()).await;
        let report = check_with(&checker, url_params(&server.url("https", "/"))).await;
        assert!(!report.ok);
        assert_eq!(
            report.failure,
            Some(FailureKind::Certificate),
            "{report:#?}"
        );
        let error = report.error.unwrap();
        assert!(error.contains(mentioned), "{problem:?}: {error}");
        let tls = report.hops[0].tls.as_ref().unwrap();
        assert!(!tls.verified);
        assert_eq!(tls.problem, Some(problem));
        let certificate = tls
            .certificate
            .as_ref()
            .expect("the refused certificate is described");
        if problem == CertificateProblem::Expired {
            assert!(certificate.expires_in_days <= -2, "{certificate:?}");
        }
        assert!(
            report.hops[0].http.is_none(),
            "no request over an untrusted connection"
        );
        assert_eq!(server.request_count(), 0);
    }
}

#[tokio::test]
async fn insecure_continues_but_still_reports_the_problem() {
    let ca = TestCa::new();
    let server = https(&ca.issue(&["127.0.0.1"], (-30, -2)), |_| ok_response()).await;
    let mut params = url_params(&server.url("https", "/"));
    params.insecure = true;
    let report = check_with(&checker(AddressPolicy::Any, Some(&ca)), params).await;
    assert!(!report.ok);
    assert_eq!(report.failure, Some(FailureKind::Certificate));
    assert!(report.error.as_deref().unwrap().contains("insecure"));
    assert_eq!(report.status, Some(200));
    let tls = report.hops[0].tls.as_ref().unwrap();
    assert_eq!(tls.problem, Some(CertificateProblem::Expired));
    assert!(tls.version.is_some());
}

#[tokio::test]
async fn protocol_mismatches_are_explained() {
    let plain = http(|_| ok_response()).await;
    let report = check_url(&plain.url("https", "/")).await;
    assert_eq!(report.failure, Some(FailureKind::Tls), "{report:#?}");
    assert!(report.error.unwrap().contains("try http://"));

    let ca = TestCa::new();
    let tls = https(&ca.issue(&["127.0.0.1"], (-1, 30)), |_| ok_response()).await;
    let report = check_url(&tls.url("http", "/")).await;
    assert!(
        matches!(
            report.failure,
            Some(FailureKind::Protocol | FailureKind::Other)
        ),
        "{report:#?}"
    );

    let ssh = http(|_| Reply::Raw(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec())).await;
    let report = check_url(&ssh.url("http", "/")).await;
    assert_eq!(report.failure, Some(FailureKind::Protocol), "{report:#?}");
    assert!(report.error.unwrap().contains("not valid HTTP"));
}

#[tokio::test]
async fn redirects_are_followed_and_recorded() {
    let server = http(|target| match target {
        "/a" => redirect("302 Found", "/b?x=1"),
        "/b?x=1" => redirect("301 Moved Permanently", "c"),
        "/c" => ok_response(),
        _ => response("404 Not Found", &[], ""),
    })
    .await;
    let report = check_url(&server.url("http", "/a")).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.status, Some(200));
    let urls: Vec<&str> = report
        .hops
        .iter()
        .filter_map(|h| h.url.as_deref())
        .collect();
    assert_eq!(
        urls,
        [
            server.url("http", "/a"),
            server.url("http", "/b?x=1"),
            server.url("http", "/c")
        ]
    );
    assert_eq!(report.final_url, Some(server.url("http", "/c")));
    assert_eq!(
        report.hops[0].http.as_ref().unwrap().headers["location"],
        "/b?x=1"
    );
}

#[tokio::test]
async fn redirect_limits_loops_and_bad_locations_stop_the_chain() {
    let server = http(|target| {
        if let Some(n) = target.strip_prefix("/r/") {
            let next: u32 = n.parse().unwrap();
            return redirect("307 Temporary Redirect", &format!("/r/{}", next + 1));
        }
        match target {
            "/loop1" => redirect("302 Found", "/loop2"),
            "/loop2" => redirect("302 Found", "/loop1"),
            "/ftp" => redirect("302 Found", "ftp://example.com/file"),
            "/see-other" => redirect("303 See Other", "/done"),
            _ => ok_response(),
        }
    })
    .await;
    let checker = checker(AddressPolicy::Any, None);

    let mut params = url_params(&server.url("http", "/r/0"));
    params.max_redirects = Some(3);
    let report = check_with(&checker, params).await;
    assert_eq!(
        report.failure,
        Some(FailureKind::TooManyRedirects),
        "{report:#?}"
    );
    assert_eq!(report.hops.len(), 4);
    assert_eq!(report.status, Some(307));

    let report = check_url(&server.url("http", "/loop1")).await;
    assert_eq!(
        report.failure,
        Some(FailureKind::RedirectLoop),
        "{report:#?}"
    );
    assert_eq!(report.hops.len(), 2);

    let report = check_url(&server.url("http", "/ftp")).await;
    assert_eq!(report.failure, Some(FailureKind::BadRedirect));
    assert!(report.error.unwrap().contains("ftp"));

    let mut params = url_params(&server.url("http", "/r/0"));
    params.max_redirects = Some(0);
    let report = check_with(&checker, params).await;
    assert!(
        report.ok,
        "with max_redirects 0 the redirect is the answer: {report:#?}"
    );
    assert_eq!(report.status, Some(307));

    let mut params = url_params(&server.url("http", "/see-other"));
    params.method = HttpMethod::Head;
    let report = check_with(&checker, params).await;
    assert!(report.ok, "{report:#?}");
    let requests = server.requests.lock().unwrap();
    assert!(requests[requests.len() - 2].starts_with("HEAD /see-other "));
    assert!(
        requests[requests.len() - 1].starts_with("GET /done "),
        "303 switches to GET"
    );
}

#[tokio::test]
async fn slow_servers_time_out_in_the_phase_they_stall() {
    let silent = http(|_| Reply::Silent).await;
    let mut params = url_params(&silent.url("http", "/"));
    params.timeout_ms = Some(300);
    let started = std::time::Instant::now();
    let report = check_with(&checker(AddressPolicy::Any, None), params).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(report.failure, Some(FailureKind::Timeout), "{report:#?}");
    let error = report.error.unwrap();
    assert!(
        error.contains("response head") && error.contains("300 ms"),
        "{error}"
    );

    let trickle = http(|_| Reply::Trickle {
        head: b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec(),
        chunk: b"x".to_vec(),
        every: Duration::from_millis(20),
    })
    .await;
    let mut params = url_params(&trickle.url("http", "/"));
    params.timeout_ms = Some(400);
    let report = check_with(&checker(AddressPolicy::Any, None), params).await;
    assert_eq!(report.failure, Some(FailureKind::Timeout), "{report:#?}");
    assert!(report.error.unwrap().contains("body"));
    assert_eq!(
        report.status,
        Some(200),
        "the head arrived before the budget ran out"
    );
}

#[tokio::test]
async fn huge_bodies_and_heads_are_bounded() {
    let huge = http(|_| Reply::Huge(8 * 1024 * 1024)).await;
    let report = check_url(&huge.url("http", "/")).await;
    assert!(report.ok, "{report:#?}");
    let response = report.hops[0].http.as_ref().unwrap();
    assert!(response.body_truncated);
    assert!(response.body_bytes > super::http::MAX_BODY_BYTES);
    assert!(response.body_bytes < super::http::MAX_BODY_BYTES + 512 * 1024);

    let big_header = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let server = http(move |_| Reply::Raw(big_header.clone().into_bytes())).await;
    let report = check_url(&server.url("http", "/")).await;
    assert_eq!(report.failure, Some(FailureKind::Protocol), "{report:#?}");
    assert!(report.error.unwrap().contains("larger than 64 KiB"));

    let mut many = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..500 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("Content-Length: 0\r\n\r\n");
    let server = http(move |_| Reply::Raw(many.clone().into_bytes())).await;
    let report = check_url(&server.url("http", "/")).await;
    assert_eq!(report.failure, Some(FailureKind::Protocol), "{report:#?}");
}

#[tokio::test]
async fn refused_and_truncated_connections_are_results() {
    let port = closed_port().await;
    let report = check_url(&format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(report.failure, Some(FailureKind::Refused), "{report:#?}");
    assert!(report.hops[0].http.is_none());

    let closes = http(|_| Reply::Raw(Vec::new())).await;
    let report = check_url(&closes.url("http", "/")).await;
    assert!(!report.ok);
    assert!(report.failure.is_some(), "{report:#?}");

    let short =
        http(|_| Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nabc".to_vec())).await;
    let report = check_url(&short.url("http", "/")).await;
    assert_eq!(report.failure, Some(FailureKind::Protocol), "{report:#?}");
    assert_eq!(report.status, Some(200));
}

#[tokio::test]
async fn tcp_checks_with_and_without_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tcp = |host: &str, port: u16, tls: bool| CheckEndpointParams {
        host: Some(host.to_owned()),
        port: Some(port),
        tls,
        timeout_ms: Some(2_000),
        ..CheckEndpointParams::default()
    };
    let any = checker(AddressPolicy::Any, None);
    let report = check_with(&any, tcp("127.0.0.1", port, false)).await;
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.target, format!("127.0.0.1:{port}"));
    assert!(report.hops[0].timing.connect_ms.is_some());
    drop(listener);
    let report = check_with(&any, tcp("127.0.0.1", port, false)).await;
    assert_eq!(report.failure, Some(FailureKind::Refused));

    let ca = TestCa::new();
    let server = https(&ca.issue(&["localhost"], (-1, 10)), |_| ok_response()).await;
    let trusted = checker(AddressPolicy::Any, Some(&ca));
    let report = check_with(&trusted, tcp("localhost", server.port(), true)).await;
    assert!(report.ok, "{report:#?}");
    let hop = &report.hops[0];
    assert!(hop.timing.dns_ms.is_some());
    assert!(hop.resolved.iter().any(|a| a == "127.0.0.1"), "{hop:?}");
    let certificate = hop.tls.as_ref().unwrap().certificate.as_ref().unwrap();
    assert_eq!(certificate.expires_in_days, 9);
    assert!(hop.http.is_none());
}

#[tokio::test]
async fn full_backlog_times_out_the_connect() {
    // A listener that never accepts, with a backlog of 1: once its queue is full, Linux drops
    // further SYNs, so a connect hangs until the budget runs out.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((Ipv4Addr::LOCALHOST, 0).into()).unwrap();
    let listener = socket.listen(1).unwrap();
    let address = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(address)).await {
            Ok(Ok(stream)) => held.push(stream),
            _ => break,
        }
    }
    let mut params = url_params(&format!("http://{address}/"));
    params.timeout_ms = Some(300);
    let report = check_with(&checker(AddressPolicy::Any, None), params).await;
    assert_eq!(report.failure, Some(FailureKind::Timeout), "{report:#?}");
    assert!(report.error.unwrap().contains("connecting"));
}

#[tokio::test]
async fn public_only_refuses_private_targets_before_connecting() {
    let server = http(|_| ok_response()).await;
    let public_only = checker(AddressPolicy::PublicOnly, None);
    for url in [
        server.url("http", "/"),
        format!("http://localhost:{}/", server.port()),
        format!("http://[::ffff:127.0.0.1]:{}/", server.port()),
        format!("http://0x7f.1:{}/", server.port()),
        format!("http://2130706433:{}/", server.port()),
    ] {
        let report = check_with(&public_only, url_params(&url)).await;
        assert_eq!(
            report.failure,
            Some(FailureKind::Blocked),
            "{url}: {report:#?}"
        );
        assert!(report.error.unwrap().contains("loopback"), "{url}");
        assert_eq!(report.address_policy, AddressPolicy::PublicOnly);
    }
    let tcp = CheckEndpointParams {
        host: Some("169.254.169.254".to_owned()),
        port: Some(80),
        ..CheckEndpointParams::default()
    };
    let report = check_with(&public_only, tcp).await;
    assert_eq!(report.failure, Some(FailureKind::Blocked));
    assert!(report.error.unwrap().contains("cloud metadata"));
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn every_redirect_hop_is_checked_against_the_policy() {
    let inner_ip: IpAddr = Ipv4Addr::new(127, 0, 0, 2).into();
    let inner = test_servers::http_on(inner_ip, |_| ok_response()).await;
    let inner_url = inner.url("http", "/secret");
    let outer = http(move |_| redirect("302 Found", &inner_url)).await;
    let mut guarded = checker(AddressPolicy::Any, None);
    guarded.also_refused = vec![inner_ip];
    let report = check_with(&guarded, url_params(&outer.url("http", "/"))).await;
    assert_eq!(report.failure, Some(FailureKind::Blocked), "{report:#?}");
    assert_eq!(report.hops.len(), 2);
    assert_eq!(report.hops[1].resolved, ["127.0.0.2"]);
    assert_eq!(report.hops[1].address, None, "never connected");
    assert_eq!(inner.connections.load(Ordering::SeqCst), 0);
    assert_eq!(outer.request_count(), 1);
}

#[test]
fn arguments_are_validated() {
    let err = |params: CheckEndpointParams| EndpointRequest::new(params).unwrap_err().to_string();
    let url = |u: &str| url_params(u);
    assert!(err(CheckEndpointParams::default()).contains("give url"));
    assert!(err(url("example.com/health")).contains("not a valid absolute URL"));
    assert!(err(url("ftp://example.com/")).contains("scheme"));
    assert!(err(url("http://user:pw@example.com/")).contains("credentials"));
    assert!(err(url("http://example.com:0/")).contains("port"));
    assert!(err(url(&format!("http://example.com/{}", "a".repeat(5000)))).contains("bytes"));
    let mut both = url("http://example.com/");
    both.host = Some("example.com".into());
    both.port = Some(80);
    assert!(err(both).contains("not both"));
    let mut tls_url = url("https://example.com/");
    tls_url.tls = true;
    assert!(err(tls_url).contains("tls applies"));
    let mut slow = url("http://example.com/");
    slow.timeout_ms = Some(60_001);
    assert!(err(slow).contains("timeout_ms"));
    let mut many = url("http://example.com/");
    many.max_redirects = Some(21);
    assert!(err(many).contains("max_redirects"));
    let host = |h: &str, port: u16| CheckEndpointParams {
        host: Some(h.to_owned()),
        port: Some(port),
        ..CheckEndpointParams::default()
    };
    assert!(err(host("http://x", 80)).contains("no scheme"));
    assert!(err(host("a b", 80)).contains("host"));
    assert!(err(host("x", 0)).contains("port"));
    assert!(
        err(CheckEndpointParams {
            host: Some("x".into()),
            ..Default::default()
        })
        .contains("give url")
    );
    for good in ["::1", "[::1]", "127.0.0.1", "bücher.example", "db.internal"] {
        assert!(EndpointRequest::new(host(good, 5432)).is_ok(), "{good}");
    }
}

#[test]
fn unknown_arguments_are_refused() {
    let error = serde_json::from_value::<CheckEndpointParams>(serde_json::json!({
        "host": "x", "port": 80, "http_path": "/health"
    }))
    .unwrap_err();
    assert!(error.to_string().contains("http_path"), "{error}");
}

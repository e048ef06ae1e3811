//! Redaction of obvious secrets in process command lines before the process tools show them.
//!
//! Command lines are readable by any user on Linux, but an MCP client (and the model behind
//! it) should not collect the passwords and tokens people pass on them. This is a best
//! effort over common spellings, not a guarantee:
//! - options and assignments whose name says secret: `--password=x`, `--token x`,
//!   `-Dapi.key=x`, `AWS_SECRET_ACCESS_KEY=x`, `token=x` inside query strings;
//! - header-like arguments: `Authorization: Bearer x`, `X-Api-Key: x`;
//! - credentials in URLs: `https://user:secret@host` keeps the user, hides the password;
//! - user:password pairs after `-u`/`--user` (curl, wget);
//! - mysql-style attached passwords (`mysql -psecret`) and `sshpass -p secret`;
//! - tokens recognisable by their shape (GitHub, GitLab, Slack, AWS key ids, JWTs, `sk-`).
//!
//! Name filters match the redacted text, so a filter cannot probe for a secret either.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Name segments (split at `-`, `_`, `.`) that mark a value as secret on their own.
const SECRET_SEGMENTS: &[&str] = &[
    "apikey",
    "auth",
    "authorization",
    "bearer",
    "cookie",
    "credential",
    "credentials",
    "passphrase",
    "passwd",
    "password",
    "pass",
    "pat",
    "pw",
    "pwd",
    "secret",
    "secrets",
    "token",
    "tokens",
];

/// Words that mark a name as secret wherever they occur (`dbpassword`, `PGPASSWORD`).
/// (`token` is not among them: `tokenizer` is no secret.)
const SECRET_WORDS: &[&str] = &["password", "passwd", "secret", "apikey", "passphrase"];

/// Segment pairs that are secret together (`api-key`, `access_key`, `client.secret`).
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("access", "key"),
    ("private", "key"),
    ("secret", "key"),
    ("session", "id"),
    ("signing", "key"),
    ("encryption", "key"),
];

/// Final segments that make a secret-sounding name refer to where the secret is, which is not
/// itself secret (`--password-file=/run/secrets/db`, `TOKEN_PATH=...`).
const REFERENCE_SEGMENTS: &[&str] = &["file", "path", "dir", "fd", "env", "length", "len"];

/// Programs whose `-p` option carries a password: attached (`mysql -psecret`) or next.
const ATTACHED_P_PASSWORD: &[&str] = &[
    "mysql",
    "mysqldump",
    "mysqladmin",
    "mariadb",
    "mariadb-dump",
];
const SEPARATE_P_PASSWORD: &[&str] = &["sshpass"];
/// Options whose value may be `user:password`.
const USER_PASSWORD_OPTIONS: &[&str] = &["-u", "--user", "--proxy-user", "-U"];

/// `name=value` anywhere in an argument; the name may follow `-`, `--`, `-D`, `?`, `&`, `;`,
/// space or `,`; the value runs to the next separator.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    // invariant: a constant pattern, checked by the tests.
    Regex::new(r"(?P<name>[A-Za-z][A-Za-z0-9_.\-]*)=(?P<value>[^&;,\s]+)").expect("valid regex")
});

/// `Name: value` header syntax.
static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    // invariant: a constant pattern, checked by the tests.
    Regex::new(r"^(?P<name>[A-Za-z][A-Za-z0-9\-]*)\s*:\s*(?P<value>.+)$").expect("valid regex")
});

/// `scheme://user:password@` in URLs.
static URL_CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    // invariant: a constant pattern, checked by the tests.
    Regex::new(r"(?P<prefix>[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*):(?P<password>[^/\s@]+)@")
        .expect("valid regex")
});

/// Tokens recognisable by their shape alone.
static TOKEN_SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    // invariant: a constant pattern, checked by the tests.
    Regex::new(concat!(
        r"\b(?:",
        r"gh[pousr]_[A-Za-z0-9]{20,}",
        r"|github_pat_[A-Za-z0-9_]{20,}",
        r"|glpat-[A-Za-z0-9_\-]{20,}",
        r"|xox[abposr]-[A-Za-z0-9\-]{10,}",
        r"|(?:AKIA|ASIA)[0-9A-Z]{16}",
        r"|sk-[A-Za-z0-9_\-]{20,}",
        r"|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
        r")\b"
    ))
    // invariant: a constant pattern, compiled by this module's tests.
    .expect("valid regex")
});

/// Whether a name (option, variable, header, query key) says its value is a secret.
pub fn is_secret_name(name: &str) -> bool {
    let words = split_words(name.trim_start_matches('-'));
    let segments: Vec<&str> = words.split(' ').filter(|s| !s.is_empty()).collect();
    if segments
        .last()
        .is_some_and(|last| REFERENCE_SEGMENTS.contains(last))
    {
        return false;
    }
    let joined = segments.concat();
    segments.iter().any(|s| SECRET_SEGMENTS.contains(s))
        || SECRET_WORDS.iter().any(|w| joined.contains(w))
        || SECRET_PAIRS
            .iter()
            .any(|(a, b)| segments.windows(2).any(|w| w[0] == *a && w[1] == *b))
}

/// `accessToken`, `access-token`, `ACCESS_TOKEN`, `access.token` → `access token`.
fn split_words(name: &str) -> String {
    let mut words = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            words.push(' ');
            previous_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && previous_lower {
            words.push(' ');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        words.push(c.to_ascii_lowercase());
    }
    words
}

/// The command line `args` (program first) with secrets replaced by [`REDACTED`].
pub fn redact_args(args: &[String]) -> Vec<String> {
    let program = args
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p))
        .unwrap_or_default();
    let mut redacted = Vec::with_capacity(args.len());
    let mut previous: Option<&str> = None;
    for (index, arg) in args.iter().enumerate() {
        let next = match previous {
            _ if index == 0 => redact_text(arg),
            Some(option) if takes_secret_value(program, option) => REDACTED.to_owned(),
            Some(option) if USER_PASSWORD_OPTIONS.contains(&option) => hide_password(arg),
            _ => redact_arg(program, arg),
        };
        redacted.push(next);
        previous = Some(arg.as_str());
    }
    redacted
}

/// Whether `option` (a whole argument) is a flag whose next argument is a secret.
fn takes_secret_value(program: &str, option: &str) -> bool {
    if option == "-p" && SEPARATE_P_PASSWORD.contains(&program) {
        return true;
    }
    // `--no-password` is a switch, not an option with a value.
    option.starts_with('-')
        && !option.starts_with("--no-")
        && !option.contains('=')
        && option.len() > 2
        && is_secret_name(option)
}

/// One argument, judged on its own.
fn redact_arg(program: &str, arg: &str) -> String {
    if ATTACHED_P_PASSWORD.contains(&program) && arg.len() > 2 && arg.starts_with("-p") {
        return format!("-p{REDACTED}");
    }
    if let Some(caps) = HEADER.captures(arg)
        && is_secret_name(&caps["name"])
    {
        return format!("{}: {REDACTED}", &caps["name"]);
    }
    // An option or a lone assignment keeps its whole value secret (`--password=a b,c`);
    // assignments inside longer text (a `sh -c` script, a URL) go through `redact_text`.
    if let Some((name, _)) = arg.split_once('=')
        && !name.is_empty()
        && (name.starts_with('-') || !arg.contains(|c: char| c.is_whitespace() || "?&".contains(c)))
        && is_secret_name(name.trim_start_matches("-D"))
    {
        return format!("{name}={REDACTED}");
    }
    redact_text(arg)
}

/// Secrets inside free text: assignments, URL credentials, known token shapes.
pub fn redact_text(text: &str) -> String {
    let text = URL_CREDENTIALS.replace_all(text, |caps: &Captures| {
        format!("{}:{REDACTED}@", &caps["prefix"])
    });
    let text = ASSIGNMENT.replace_all(&text, |caps: &Captures| {
        if is_secret_name(&caps["name"]) {
            format!("{}={REDACTED}", &caps["name"])
        } else {
            caps[0].to_owned()
        }
    });
    TOKEN_SHAPES.replace_all(&text, REDACTED).into_owned()
}

/// `user:password` → `user:[redacted]`; anything else stays (it is a user name).
fn hide_password(value: &str) -> String {
    match value.split_once(':') {
        Some((user, _)) => format!("{user}:{REDACTED}"),
        None => redact_text(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(line: &str) -> String {
        let args: Vec<String> = line.split(' ').map(str::to_owned).collect();
        redact_args(&args).join(" ")
    }

    #[test]
    fn secret_options_and_assignments() {
        let cases = [
            ("app --password=hunter2 -v", "app --password=[redacted] -v"),
            ("app --password hunter2 -v", "app --password [redacted] -v"),
            ("app --db-password=a,b;c", "app --db-password=[redacted]"),
            ("app --token abc123", "app --token [redacted]"),
            (
                "app --api-key=k1 --apiKey k2",
                "app --api-key=[redacted] --apiKey [redacted]",
            ),
            ("app --client-secret s", "app --client-secret [redacted]"),
            (
                "java -Dapi.key=k -Ddb.password=p -jar x.jar",
                "java -Dapi.key=[redacted] -Ddb.password=[redacted] -jar x.jar",
            ),
            (
                "env AWS_SECRET_ACCESS_KEY=abc AWS_REGION=eu cmd",
                "env AWS_SECRET_ACCESS_KEY=[redacted] AWS_REGION=eu cmd",
            ),
            (
                "env GITHUB_TOKEN=x PGPASSWORD=y run",
                "env GITHUB_TOKEN=[redacted] PGPASSWORD=[redacted] run",
            ),
            ("worker token=abc", "worker token=[redacted]"),
            ("app --auth=basic:xyz", "app --auth=[redacted]"),
            ("app --session-id 77", "app --session-id [redacted]"),
            (
                "app --accessToken t --no-password -h db",
                "app --accessToken [redacted] --no-password -h db",
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(redact(line), expected, "{line}");
        }
    }

    #[test]
    fn urls_headers_and_users() {
        let cases = [
            (
                "git clone https://alice:s3cret@git.example.com/r.git",
                "git clone https://alice:[redacted]@git.example.com/r.git",
            ),
            (
                "psql postgres://app:pw@db:5432/main?sslmode=require",
                "psql postgres://app:[redacted]@db:5432/main?sslmode=require",
            ),
            (
                "curl https://api.example.com/v1?user=bob&access_token=xyz&page=2",
                "curl https://api.example.com/v1?user=bob&access_token=[redacted]&page=2",
            ),
            (
                "curl -u bob:pw https://x",
                "curl -u bob:[redacted] https://x",
            ),
            ("curl --user bob https://x", "curl --user bob https://x"),
            ("mysql -uroot -phunter2 db", "mysql -uroot -p[redacted] db"),
            (
                "sshpass -p hunter2 ssh host",
                "sshpass -p [redacted] ssh host",
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(redact(line), expected, "{line}");
        }
        let header = vec![
            "curl".to_owned(),
            "-H".to_owned(),
            "Authorization: Bearer abc.def".to_owned(),
            "-H".to_owned(),
            "X-Api-Key: k".to_owned(),
            "-H".to_owned(),
            "Accept: text/html".to_owned(),
        ];
        assert_eq!(
            redact_args(&header),
            [
                "curl",
                "-H",
                "Authorization: [redacted]",
                "-H",
                "X-Api-Key: [redacted]",
                "-H",
                "Accept: text/html"
            ]
        );
    }

    #[test]
    fn tokens_recognised_by_shape() {
        let line = "deploy ghp_0123456789abcdefghijABCDEFGHIJ AKIAIOSFODNN7EXAMPLE \
                    eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl \
                    xoxb-1234567890-abcdef sk-abcdefghijklmnopqrstuvwx";
        assert_eq!(
            redact(line),
            "deploy [redacted] [redacted] [redacted] [redacted] [redacted]"
        );
    }

    #[test]
    fn ordinary_arguments_stay() {
        for line in [
            "git commit --author=me -m fix",
            "make -j4 --keep-going",
            "app --passes=3 --tokenizer=bpe --keyboard=us",
            "app --password-file=/run/secrets/db --token-path /etc/t",
            "nginx -g daemon off;",
            "python3 -m http.server 8080",
            "ssh -p 2222 host",
            "mysqldump --single-transaction db",
            "curl https://example.com/a?b=c",
            "sh -c sleep 30; :",
        ] {
            assert_eq!(redact(line), line);
        }
    }

    #[test]
    fn the_program_itself_is_only_scanned_as_text() {
        assert_eq!(redact("/usr/bin/token"), "/usr/bin/token");
        assert_eq!(
            redact_args(&["/opt/app/bin/run".into(), "--token".into()]),
            ["/opt/app/bin/run", "--token"]
        );
    }

    #[test]
    fn names() {
        for name in [
            "password",
            "--DB_PASSWORD",
            "x-auth-token",
            "api.key",
            "secretKey",
            "PAT",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "author",
            "--passes",
            "keyboard",
            "path",
            "token-file",
            "bypass",
            "compass",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}

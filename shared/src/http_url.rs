//! The URLs Celeriac sends requests to (a remote task type's endpoint, a task's
//! `callback_url`, a webhook subscription, the OTLP endpoint): one rule, checked where each is
//! accepted. A leaf of the model, so the task options and the settings check it without
//! depending on the modules that make the calls.

/// What [`is_http_url`] asks for, as an error message.
pub const HTTP_URL_EXPECTED: &str = "must be an absolute http:// or https:// URL with a host, in printable ASCII, at most 2048 characters";

/// The same rule as a pattern, for the API's schema (`^https?://` host `[/path]`).
pub const HTTP_URL_PATTERN: &str = r"^https?://[A-Za-z0-9.:\[\]_-]+(/[!-~]*)?$";

/// Whether `url` is one Celeriac will `POST` to (a remote task type's URL, a task's
/// `callback_url`): `http://` or `https://`, a host (letters, digits, `.-_:[]`: a name or an
/// address, and a port), then nothing or a path of printable ASCII; at most 2048 characters.
/// [`HTTP_URL_PATTERN`] says the same.
pub fn is_http_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        return false;
    };
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host_ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'[' | b']' | b'_' | b'-');
    url.len() <= 2048 && !host.is_empty() && host.bytes().all(host_ok) && path.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_celeriac_calls_is_http_or_https_with_a_host_and_a_printable_path() {
        for good in [
            "http://localhost:8080/run",
            "https://tasks.example.com",
            "http://[::1]:9000/a?b=c",
            "http://10.0.0.7/x_y-z",
        ] {
            assert!(is_http_url(good), "{good}");
        }
        let too_long = format!("http://h/{}", "a".repeat(2048));
        for bad in [
            "ftp://example.com/",
            "http://",
            "https:///path",
            "http://exa mple.com/",
            "http://example.com/a b",
            "example.com/run",
            too_long.as_str(),
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }
}

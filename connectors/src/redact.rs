//! Keeping secrets out of what people see: option values whose names say they are secret,
//! the user info of URLs, and secret query parameters (`?secret_access_key=...`).

/// What a secret is shown as.
pub const MASK: &str = "******";

/// Whether an option or parameter of this name holds a secret (a token, a password, a
/// private or secret key, credentials, auth parameters).
pub fn is_secret_name(name: &str) -> bool {
    let squashed: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    const WORDS: &[&str] = &[
        "secret",
        "password",
        "passwd",
        "token",
        "authparam",
        "credential",
        "privatekey",
        "accountkey",
        "accesskey",
        "apikey",
        "masterkey",
        "sharedkey",
        "sastoken",
        "saskey",
        "signature",
    ];
    // `accesskeyid` names the public half of a key pair.
    WORDS.iter().any(|w| squashed.contains(w)) && !squashed.ends_with("accesskeyid")
}

/// `url` with its user info and the values of secret query parameters masked.
pub fn url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let after = scheme_end + 3;
    let authority_end = url[after..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after + i);
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..after]);
    match url[after..authority_end].rfind('@') {
        Some(at) => {
            out.push_str(MASK);
            out.push_str(&url[after + at..authority_end]);
        }
        None => out.push_str(&url[after..authority_end]),
    }
    let rest = &url[authority_end..];
    match rest.split_once('?') {
        None => out.push_str(rest),
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_secret_name(name) => format!("{name}={MASK}"),
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
            if let Some(f) = fragment {
                out.push('#');
                out.push_str(f);
            }
        }
    }
    out
}

/// `text` with every URL in it passed through [`url`].
pub fn text(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // The URL starts at the scheme: the letters (and `+.-`) just before `://`.
        let scheme_start = rest[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || "+.-".contains(*c)))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || "'\"`,;()<>".contains(c))
            .map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..scheme_start]);
        out.push_str(&url(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised_and_ordinary_ones_are_not() {
        for name in [
            "pulsar.client.authParams",
            "pulsar.client.authParamMap",
            "secret_access_key",
            "aws_secret_access_key",
            "password",
            "token",
            "azure_storage_account_key",
            "privateKey",
            "sas_token",
            "azure_storage_sas_key",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "key.fields",
            "key.format",
            "topics",
            "service-url",
            "access_key_id",
            "aws_access_key_id",
            "region",
            "pulsar.client.tlsKeyFilePath",
            "source.subscription-name",
            "pulsar.client.authPluginClassName",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn urls_lose_their_user_info_and_secret_parameters() {
        assert_eq!(
            url("http://admin:s3cr3t@host:8080/admin/v2"),
            "http://******@host:8080/admin/v2"
        );
        assert_eq!(
            url("s3://bucket/dir?region=x&secret_access_key=s3cr3t&access_key_id=AK"),
            "s3://bucket/dir?region=x&secret_access_key=******&access_key_id=AK"
        );
        assert_eq!(url("pulsar://host:6650"), "pulsar://host:6650");
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn urls_inside_text_are_masked() {
        let shown = text(
            "cannot reach 'https://u:s3cr3t@h/x?token=s3cr3t' (and s3://b?secret_access_key=s3cr3t): refused",
        );
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("https://******@h/x?token=******"), "{shown}");
        assert!(shown.ends_with("): refused"), "{shown}");
        // Text around URLs may be any UTF-8.
        let shown = text("«http://u:s3cr3t@h» – é://x");
        assert_eq!(shown, "«http://******@h» – é://x");
    }
}

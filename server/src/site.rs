//! The site's files: the browser bundle (wasm, its chunks and their loader,
//! js, css, each beside its `.br` and `.gz`), the icon, and Swagger UI's
//! script and stylesheet. Pages are rendered elsewhere; this serves files.
//!
//! A build with the `embed-site` feature carries `target/site` inside the
//! binary, so the binary runs from any directory with nothing beside it.
//! Its bundle is addressed by version, `/pkg/<version>/antibody.wasm`, the
//! version being a digest of every bundle file: those URLs never change
//! meaning, so browsers keep them for a year without asking (`immutable`),
//! and a new build is new URLs. The bundle's files find one another by
//! relative URLs, so the version folder needs no rewriting inside them.
//!
//! A folder (`LEPTOS_SITE_ROOT`, or any build without the feature) is for
//! development: it is rebuilt under a running server, so its files keep
//! their plain names and are revalidated on every load.
//!
//! Every file answers with an ETag (a digest of the bytes sent, so the
//! `.br`, `.gz` and plain forms differ) and `304 Not Modified` when the
//! browser already holds it, in the best encoding the browser accepts.

use std::{borrow::Cow, path::PathBuf, sync::Arc};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use sha2::{Digest, Sha256};

/// Where the bundle lives under the site, in URLs and on disk.
const PKG: &str = "pkg";
/// How long a versioned file may be kept: a year, the longest that caches honour.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Everything else is kept but revalidated (answered by a 304 when unchanged).
const REVALIDATE: &str = "no-cache";

/// The site built into the binary by `cargo build --features embed-site`
/// after `cargo xtask site --release` (the xtask's `run` and `image` do both).
#[cfg(feature = "embed-site")]
#[derive(rust_embed::RustEmbed)]
#[folder = "../target/site"]
struct Embedded;

/// Where the files come from.
#[derive(Debug)]
enum Source {
    /// Inside the binary.
    #[cfg(feature = "embed-site")]
    Embedded,
    /// A folder, read on every request.
    Folder(PathBuf),
}

/// The site's files; cheap to clone.
#[derive(Debug, Clone)]
pub struct Site {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: Source,
    /// The digest naming the bundle's folder in URLs; a folder's bundle has none.
    version: Option<String>,
}

/// One file's bytes and their SHA-256.
struct File {
    bytes: Cow<'static, [u8]>,
    sha256: [u8; 32],
}

/// A content coding the site may hold a file in, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Brotli,
    Gzip,
    Identity,
}

impl Coding {
    const PREFERRED: [Coding; 3] = [Coding::Brotli, Coding::Gzip, Coding::Identity];

    /// The suffix of the file holding a file in this coding.
    fn suffix(self) -> &'static str {
        match self {
            Coding::Brotli => ".br",
            Coding::Gzip => ".gz",
            Coding::Identity => "",
        }
    }

    /// The `Content-Encoding` token.
    fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
            Coding::Identity => "identity",
        }
    }
}

impl Site {
    /// The folder at `root` when given, else the site built into the
    /// binary, else `target/site` (a build without the site inside).
    pub fn new(root: Option<PathBuf>) -> anyhow::Result<Self> {
        let source = match root {
            Some(root) => Source::Folder(root),
            None => Self::default_source(),
        };
        let version = match &source {
            #[cfg(feature = "embed-site")]
            Source::Embedded => Some(embedded_version()?),
            Source::Folder(_) => None,
        };
        Ok(Self {
            inner: Arc::new(Inner { source, version }),
        })
    }

    #[cfg(feature = "embed-site")]
    fn default_source() -> Source {
        Source::Embedded
    }

    #[cfg(not(feature = "embed-site"))]
    fn default_source() -> Source {
        Source::Folder(PathBuf::from("target/site"))
    }

    /// Where pages load the bundle from, relative to the site's root (Leptos's
    /// `site_pkg_dir`): `pkg/<version>`, or `pkg` for a folder.
    pub fn pkg_dir(&self) -> String {
        match &self.inner.version {
            Some(version) => format!("{PKG}/{version}"),
            None => PKG.to_owned(),
        }
    }

    /// A folder's path, for Leptos's options; `None` for the built-in site.
    pub fn folder(&self) -> Option<&std::path::Path> {
        match &self.inner.source {
            #[cfg(feature = "embed-site")]
            Source::Embedded => None,
            Source::Folder(root) => Some(root),
        }
    }

    /// Answers a GET or HEAD for `path` (the URL's path), or `None` when the
    /// site has no such file.
    pub async fn respond(&self, path: &str, request: &HeaderMap) -> Option<Response> {
        let (path, immutable) = self.resolve(path)?;
        // The plain file must exist: its coded forms are only ever its copies.
        if !self.has(&path).await {
            return None;
        }
        let accepted = accepted_codings(request);
        let mut chosen = None;
        // Best first; identity, last, always exists.
        for coding in Coding::PREFERRED.into_iter().filter(|c| accepted.contains(c)) {
            if let Some(file) = self.read(&format!("{path}{}", coding.suffix())).await {
                chosen = Some((coding, file));
                break;
            }
        }
        // Gone between the look and the read (a folder being rebuilt).
        let (coding, file) = chosen?;
        let etag = format!("\"{}\"", hex::encode(&file.sha256[..16]));
        let mut response = if matches(request, &etag) {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        } else {
            let mut response = Response::new(Body::from(file.bytes));
            let mime = mime_guess::from_path(&path).first_or_octet_stream();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(mime.as_ref()).expect("a MIME type is a header value"),
            );
            if coding != Coding::Identity {
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding.token()));
            }
            response
        };
        let headers = response.headers_mut();
        headers.insert(
            header::ETAG,
            HeaderValue::from_str(&etag).expect("hex is a header value"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if immutable { IMMUTABLE } else { REVALIDATE }),
        );
        Some(response)
    }

    /// The site path for a URL path, and whether it is a versioned (so
    /// immutable) one; `None` for a path no file can have.
    fn resolve(&self, url_path: &str) -> Option<(String, bool)> {
        let path = url_path.strip_prefix('/')?;
        let safe = !path.is_empty()
            && path
                .split('/')
                .all(|segment| !segment.is_empty() && segment != "." && segment != ".." && !segment.contains('\\'));
        if !safe {
            return None;
        }
        if let Some(version) = &self.inner.version {
            let versioned = format!("{PKG}/{version}/");
            if let Some(file) = path.strip_prefix(&versioned) {
                return Some((format!("{PKG}/{file}"), true));
            }
        }
        Some((path.to_owned(), false))
    }

    /// Whether the site has a file at `path`, without reading it.
    async fn has(&self, path: &str) -> bool {
        match &self.inner.source {
            #[cfg(feature = "embed-site")]
            Source::Embedded => <Embedded as rust_embed::RustEmbed>::get(path).is_some(),
            Source::Folder(root) => tokio::fs::metadata(root.join(path)).await.is_ok_and(|m| m.is_file()),
        }
    }

    async fn read(&self, path: &str) -> Option<File> {
        match &self.inner.source {
            #[cfg(feature = "embed-site")]
            Source::Embedded => {
                let file = <Embedded as rust_embed::RustEmbed>::get(path)?;
                Some(File {
                    sha256: file.metadata.sha256_hash(),
                    bytes: file.data,
                })
            }
            Source::Folder(root) => {
                let bytes = tokio::fs::read(root.join(path)).await.ok()?;
                Some(File {
                    sha256: Sha256::digest(&bytes).into(),
                    bytes: Cow::Owned(bytes),
                })
            }
        }
    }
}

/// The digest of every bundle file (names and contents): the built-in
/// bundle's version.
#[cfg(feature = "embed-site")]
fn embedded_version() -> anyhow::Result<String> {
    let mut names: Vec<_> = <Embedded as rust_embed::RustEmbed>::iter()
        .filter(|name| name.starts_with(&format!("{PKG}/")))
        .collect();
    anyhow::ensure!(
        !names.is_empty(),
        "this binary was built with an empty site: run `cargo xtask site --release` before building it"
    );
    names.sort();
    let mut digest = Sha256::new();
    for name in names {
        let file = <Embedded as rust_embed::RustEmbed>::get(&name).expect("iter names only embedded files");
        digest.update(name.as_bytes());
        digest.update(file.metadata.sha256_hash());
    }
    Ok(hex::encode(&digest.finalize()[..8]))
}

/// The codings `Accept-Encoding` allows (a `q=0` refuses one); identity is
/// always allowed, as RFC 9110 has it unless refused by name.
fn accepted_codings(request: &HeaderMap) -> Vec<Coding> {
    let mut accepted = vec![Coding::Identity];
    let offered = request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for item in offered {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        let coding = match name.as_str() {
            "br" => Coding::Brotli,
            "gzip" | "x-gzip" => Coding::Gzip,
            _ => continue,
        };
        if !refused {
            accepted.push(coding);
        }
    }
    accepted
}

/// Whether `If-None-Match` names `etag` (weakly, as RFC 9110 asks of it) or is `*`.
fn matches(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
            .collect()
    }

    fn folder_site() -> (tempfile::TempDir, Site) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("pkg/app.js"), "plain").unwrap();
        std::fs::write(dir.path().join("pkg/app.js.br"), "brotli").unwrap();
        std::fs::write(dir.path().join("pkg/app.js.gz"), "gzip").unwrap();
        std::fs::write(dir.path().join("pkg/only.br"), "orphan").unwrap();
        let site = Site::new(Some(dir.path().to_owned())).unwrap();
        (dir, site)
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn codings_follow_accept_encoding_and_q_zero_refuses() {
        let accepted = |value: &str| accepted_codings(&headers(&[(header::ACCEPT_ENCODING, value)]));
        assert_eq!(
            accepted("gzip, deflate, br"),
            [Coding::Identity, Coding::Gzip, Coding::Brotli]
        );
        assert_eq!(accepted("br;q=0, gzip;q=0.5"), [Coding::Identity, Coding::Gzip]);
        assert_eq!(accepted("zstd"), [Coding::Identity]);
        assert_eq!(accepted_codings(&HeaderMap::new()), [Coding::Identity]);
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let tag = "\"abc\"";
        assert!(matches(&headers(&[(header::IF_NONE_MATCH, "\"x\", \"abc\"")]), tag));
        assert!(matches(&headers(&[(header::IF_NONE_MATCH, "W/\"abc\"")]), tag));
        assert!(matches(&headers(&[(header::IF_NONE_MATCH, "*")]), tag));
        assert!(!matches(&headers(&[(header::IF_NONE_MATCH, "\"abd\"")]), tag));
        assert!(!matches(&HeaderMap::new(), tag));
    }

    #[tokio::test]
    async fn the_best_accepted_coding_is_sent_with_its_own_etag() {
        let (_dir, site) = folder_site();
        let mut tags = Vec::new();
        for (accept, encoding, text) in [
            ("gzip, br", Some("br"), "brotli"),
            ("gzip", Some("gzip"), "gzip"),
            ("", None, "plain"),
        ] {
            let response = site
                .respond("/pkg/app.js", &headers(&[(header::ACCEPT_ENCODING, accept)]))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let got = response
                .headers()
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap());
            assert_eq!(got, encoding);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "text/javascript");
            assert_eq!(response.headers()[header::CACHE_CONTROL], REVALIDATE);
            tags.push(response.headers()[header::ETAG].clone());
            assert_eq!(body(response).await, text);
        }
        tags.dedup();
        assert_eq!(tags.len(), 3, "each coding is its own representation");
    }

    #[tokio::test]
    async fn a_held_etag_gets_304_without_a_body() {
        let (_dir, site) = folder_site();
        let first = site.respond("/pkg/app.js", &HeaderMap::new()).await.unwrap();
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        let again = site
            .respond("/pkg/app.js", &headers(&[(header::IF_NONE_MATCH, &etag)]))
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag.as_str());
        assert_eq!(body(again).await, "");
    }

    #[tokio::test]
    async fn paths_outside_the_site_and_orphan_codings_are_not_files() {
        let (dir, site) = folder_site();
        std::fs::write(dir.path().parent().unwrap().join("secret"), "no").ok();
        for path in [
            "/../secret",
            "/pkg/../../secret",
            "/pkg//app.js",
            "/",
            "pkg/app.js",
            "/pkg/only",
        ] {
            assert!(site.respond(path, &HeaderMap::new()).await.is_none(), "{path}");
        }
    }

    #[test]
    fn a_folder_bundle_is_unversioned() {
        let (_dir, site) = folder_site();
        assert_eq!(site.pkg_dir(), "pkg");
        assert_eq!(site.resolve("/pkg/app.js"), Some(("pkg/app.js".into(), false)));
    }

    #[cfg(feature = "embed-site")]
    #[tokio::test]
    async fn the_built_in_bundle_is_versioned_and_immutable() {
        let site = Site::new(None).unwrap();
        let dir = site.pkg_dir();
        assert!(dir.starts_with("pkg/") && dir.len() == "pkg/".len() + 16, "{dir}");
        let response = site
            .respond(
                &format!("/{dir}/antibody.wasm"),
                &headers(&[(header::ACCEPT_ENCODING, "br")]),
            )
            .await
            .unwrap();
        assert_eq!(response.headers()[header::CACHE_CONTROL], IMMUTABLE);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/wasm");
        assert!(
            site.respond("/pkg/0000000000000000/antibody.wasm", &HeaderMap::new())
                .await
                .is_none()
        );
    }
}

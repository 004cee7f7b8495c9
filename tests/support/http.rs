//! A small request DSL for tests against a server's base URL, so a test
//! reads like the guarantee it checks:
//!
//! ```ignore
//! let api = Api::new(&server.client, &server.url);
//! let (writer, reader) = (api.creds(WRITER), api.creds(READER));
//! let upload = writer
//!     .post("/v2/acme/a/blobs/uploads/")
//!     .await
//!     .expect(StatusCode::ACCEPTED)
//!     .location();
//! reader.get(&upload).await.expect_error(StatusCode::FORBIDDEN, "DENIED");
//! api.put(path).creds(ADMIN).json(&body).await.expect(StatusCode::OK);
//! ```
//!
//! An [`Api`] is a client, a base URL and whom requests are sent as
//! (Basic credentials, a bearer token, or no one); its `get`, `head`,
//! `post`, `put`, `patch` and `delete` start a [`Call`], which takes
//! credentials, headers and a body and is sent by awaiting it.
//! The answer is read whole into a [`Reply`], whose `expect*` checks panic
//! with the request and the body in the message and hand the reply back
//! for more checks.
//!
//! Error bodies are those of both APIs, `/v2` (OCI) and `/api/v0` (DTR):
//! `{"errors": [{"code", "message", "detail"}]}`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Basic credentials; `None` is anonymous.
type Creds<'a> = Option<(&'a str, &'a str)>;

/// Where calls go: a client, a server's base URL, and the credentials
/// calls are sent with unless they say otherwise.
#[derive(Clone, Debug)]
pub struct Api {
    client: reqwest::Client,
    base: String,
    auth: Option<Auth>,
}

/// How calls authenticate.
#[derive(Clone, Debug)]
enum Auth {
    /// `Authorization: Basic` of a user and a password (or access token).
    Basic(String, String),
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

/// `Api::get(path)` and the like: a call of that method to `path`.
macro_rules! methods {
    ($($name:ident => $method:ident),* $(,)?) => {$(
        #[doc = concat!("A `", stringify!($method), "` of `path` (below the base URL, or a `Location` the server answered).")]
        pub fn $name(&self, path: impl Into<String>) -> Call {
            self.call(Method::$method, path)
        }
    )*};
}

impl Api {
    /// Anonymous calls to `base` (`http://HOST:PORT`) with `client`.
    pub fn new(client: &reqwest::Client, base: &str) -> Api {
        Api {
            client: client.clone(),
            base: base.trim_end_matches('/').to_string(),
            auth: None,
        }
    }

    /// The same server, called as `creds` (`None`: anonymously).
    pub fn creds(&self, creds: Creds) -> Api {
        Api {
            auth: creds.map(|(u, p)| Auth::Basic(u.to_string(), p.to_string())),
            ..self.clone()
        }
    }

    /// The same server, called with `Authorization: Bearer <token>`.
    pub fn bearer(&self, token: &str) -> Api {
        Api {
            auth: Some(Auth::Bearer(token.to_string())),
            ..self.clone()
        }
    }

    /// A `method` call to `path`.
    pub fn call(&self, method: Method, path: impl Into<String>) -> Call {
        Call {
            api: self.clone(),
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    methods!(get => GET, head => HEAD, post => POST, put => PUT, patch => PATCH, delete => DELETE);
}

/// One request, before it is sent; awaiting it sends it.
#[derive(Clone, Debug)]
pub struct Call {
    api: Api,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Call {
    /// Sends this call as `creds` (`None`: anonymously) instead.
    pub fn creds(mut self, creds: Creds) -> Call {
        self.api = self.api.creds(creds);
        self
    }

    /// Appends `query` (`key=value&...`) with `?` or `&` as the path needs.
    pub fn query(mut self, query: &str) -> Call {
        let sep = if self.path.contains('?') { '&' } else { '?' };
        self.path = format!("{}{sep}{query}", self.path);
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Call {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A raw body (without a `Content-Type` unless one is added).
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Call {
        self.body = Some(bytes.into());
        self
    }

    /// A JSON body, with `Content-Type: application/json`.
    pub fn json(self, value: &Value) -> Call {
        self.header(CONTENT_TYPE.as_str(), "application/json")
            .body(serde_json::to_vec(value).unwrap())
    }

    /// `GET /path as user`, for failure messages.
    fn describe(&self) -> String {
        let (method, path) = (&self.method, &self.path);
        match &self.api.auth {
            Some(Auth::Basic(user, _)) => format!("{method} {path} as {user}"),
            Some(Auth::Bearer(_)) => format!("{method} {path} with a bearer token"),
            None => format!("{method} {path} anonymously"),
        }
    }

    /// Sends the call and reads the whole answer; panics if there is no
    /// answer at all.
    async fn send(self) -> Reply {
        let request = self.describe();
        let url = format!("{}{}", self.api.base, self.path);
        let mut rb = self.api.client.request(self.method, url);
        match &self.api.auth {
            Some(Auth::Basic(user, password)) => rb = rb.basic_auth(user, Some(password)),
            Some(Auth::Bearer(token)) => rb = rb.bearer_auth(token),
            None => {}
        }
        for (name, value) in &self.headers {
            rb = rb.header(name.as_str(), value.as_str());
        }
        if let Some(body) = self.body {
            rb = rb.body(body);
        }
        let resp = rb.send().await.unwrap_or_else(|e| panic!("{request}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{request}: body: {e}"));
        Reply {
            request,
            status,
            headers,
            body,
        }
    }
}

impl IntoFuture for Call {
    type Output = Reply;
    type IntoFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// A whole answer: status, headers and body.
#[derive(Debug)]
pub struct Reply {
    /// What was asked, for failure messages (`PUT /v2/... as writer`).
    pub request: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// Checks the status; the reply, for more checks.
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Reply {
        assert_eq!(self.status, status, "{}: {}", self.request, self.text());
        self
    }

    /// Checks an error answer: the status, `errors[0].code` and that the
    /// error has a message; the reply, for more checks.
    #[track_caller]
    pub fn expect_error(self, status: StatusCode, code: &str) -> Reply {
        let what = format!("{}: {}", self.request, self.text());
        let got = (self.status, self.error_code());
        assert_eq!((got.0, got.1.as_str()), (status, code), "{what}");
        assert!(self.error()["message"].is_string(), "{what}");
        self
    }

    /// Checks `errors[0].detail.field`, the form field or parameter an
    /// error names; the reply, for more checks.
    #[track_caller]
    pub fn expect_field(self, field: &str) -> Reply {
        let named = self.error()["detail"]["field"].clone();
        assert_eq!(named, field, "{}: {}", self.request, self.text());
        self
    }

    /// The first error of the body (`Null` when there is none).
    pub fn error(&self) -> Value {
        self.json()["errors"][0].clone()
    }

    /// `errors[0].code`, or `""`.
    pub fn error_code(&self) -> String {
        self.error()["code"].as_str().unwrap_or("").to_string()
    }

    /// A header's value; panics if it is missing.
    #[track_caller]
    pub fn header(&self, name: &str) -> &str {
        self.header_opt(name)
            .unwrap_or_else(|| panic!("{}: no {name} header", self.request))
    }

    /// A header's value, if there is one.
    pub fn header_opt(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The `Location` header (a path, for this server).
    #[track_caller]
    pub fn location(&self) -> String {
        self.header(LOCATION.as_str()).to_string()
    }

    /// The body as JSON; `Null` when it is empty or not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

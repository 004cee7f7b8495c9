//! DTR's paging of lists, written once for every list that pages:
//! `pageStart` (the key of the first item, from the previous page's
//! `X-Next-Page-Start`), `pageSize` and `count` in; the page, with
//! `X-Next-Page-Start` (when more follow) and `X-Resource-Count` (the total,
//! with `count=true`) out.
//!
//! DTR clamps the page size instead of refusing it, and real scripts rely
//! on that (`pageSize=100000`, `pageSize=0`, `pageSize=10000000`): a size
//! above [`MAX_PAGE_SIZE`] is the maximum, and 0 (or a negative number)
//! means [`DEFAULT_PAGE_SIZE`]. Only a value that is not an integer at all
//! is a 400 naming the parameter.

use axum::Json;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};

/// Items per page when the client does not say (DTR's default).
pub const DEFAULT_PAGE_SIZE: usize = 10;

/// The most items one page holds; larger sizes are clamped to it.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The header naming the first item of the next page.
pub const NEXT_PAGE_HEADER: &str = "x-next-page-start";

/// The header carrying the total number of items (`count=true`).
pub const COUNT_HEADER: &str = "x-resource-count";

/// A page size as asked, already clamped to `1..=MAX_PAGE_SIZE` (0 and
/// negative numbers mean the default). Parsed from the query text, so that
/// numbers too large for any integer type clamp too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(usize);

impl PageSize {
    /// The clamped size.
    pub fn get(self) -> usize {
        self.0
    }

    /// The size `text` asks for, or why it is not an integer.
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{:?} is not an integer",
                text.chars().take(50).collect::<String>()
            ));
        }
        let size = match digits.parse::<usize>() {
            _ if negative => 0,
            Ok(n) => n,
            Err(_) => MAX_PAGE_SIZE,
        };
        Ok(PageSize(if size == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            size.min(MAX_PAGE_SIZE)
        }))
    }
}

impl Default for PageSize {
    fn default() -> Self {
        PageSize(DEFAULT_PAGE_SIZE)
    }
}

impl<'de> Deserialize<'de> for PageSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PageSize::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The paging parameters of a list (`?pageStart=&pageSize=&count=`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    /// The key of the first item of the page (`X-Next-Page-Start` of the
    /// previous one); empty or absent: the first page.
    page_start: Option<String>,
    /// Items per page.
    page_size: Option<PageSize>,
    /// Also send the total in `X-Resource-Count`.
    count: Option<bool>,
}

impl PageQuery {
    /// The page of `items`, which are sorted by `key` (ascending, unique),
    /// that this query asks for.
    pub fn page<T>(&self, items: Vec<T>, key: impl Fn(&T) -> &str) -> Page<T> {
        let size = self.page_size.unwrap_or_default().get();
        let start = self.page_start.as_deref().unwrap_or("");
        let total = items.len();
        let mut page: Vec<T> = items
            .into_iter()
            .skip_while(|item| key(item) < start)
            .take(size + 1)
            .collect();
        let next = (page.len() > size)
            .then(|| page.pop().map(|item| key(&item).to_string()))
            .flatten();
        Page {
            items: page,
            headers: PageHeaders {
                next,
                total: (self.count == Some(true)).then_some(total),
            },
        }
    }
}

/// eNZi's paging (`?start=&limit=`, as UCP's account API took it): the
/// same pages as [`PageQuery`], the next page's start in the body's
/// `nextPageStart` (empty at the end).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnziPageQuery {
    /// The name of the first item of the page (`nextPageStart` of the
    /// previous one); empty or absent: the first page.
    start: Option<String>,
    /// Items per page (clamped as `pageSize` is).
    limit: Option<PageSize>,
}

impl EnziPageQuery {
    /// The page of `items` (sorted by `key`) and the next page's start.
    pub fn page<T>(&self, items: Vec<T>, key: impl Fn(&T) -> &str) -> (Vec<T>, String) {
        let query = PageQuery {
            page_start: self.start.clone(),
            page_size: self.limit,
            count: None,
        };
        let page = query.page(items, key);
        (page.items, page.headers.next.unwrap_or_default())
    }
}

/// One page of a list, and the headers that describe it.
#[derive(Debug)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// `X-Next-Page-Start` and `X-Resource-Count`.
    pub headers: PageHeaders,
}

/// What a page tells about the rest of the list.
#[derive(Debug)]
pub struct PageHeaders {
    /// The key of the first item of the next page, if there is one.
    next: Option<String>,
    /// How many items the whole list has, when `count=true` asked.
    total: Option<usize>,
}

impl PageHeaders {
    /// `200` with `body` as JSON and the paging headers.
    pub fn respond(self, body: impl Serialize) -> Response {
        let mut resp = Json(body).into_response();
        let headers = resp.headers_mut();
        if let Some(next) = self.next.and_then(|n| HeaderValue::from_str(&n).ok()) {
            headers.insert(NEXT_PAGE_HEADER, next);
        }
        if let Some(total) = self.total {
            headers.insert(COUNT_HEADER, HeaderValue::from(total));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_clamp_like_dtr() {
        for (text, size) in [
            ("1", 1),
            ("25", 25),
            ("1000", 1000),
            ("1001", MAX_PAGE_SIZE),
            ("100000", MAX_PAGE_SIZE),
            ("10000000", MAX_PAGE_SIZE),
            ("99999999999999999999999", MAX_PAGE_SIZE),
            ("0", DEFAULT_PAGE_SIZE),
            ("-1", DEFAULT_PAGE_SIZE),
            ("-99999999999999999999999", DEFAULT_PAGE_SIZE),
            ("+5", 5),
        ] {
            assert_eq!(PageSize::parse(text), Ok(PageSize(size)), "{text}");
        }
        for text in ["", "ten", "1.5", "1e3", "-", "0x10"] {
            assert!(PageSize::parse(text).is_err(), "{text}");
        }
    }

    fn query(start: Option<&str>, size: usize, count: bool) -> PageQuery {
        PageQuery {
            page_start: start.map(str::to_string),
            page_size: Some(PageSize(size)),
            count: Some(count),
        }
    }

    #[test]
    fn pages_follow_the_start_key() {
        let items: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let first = query(None, 2, true).page(items.clone(), String::as_str);
        assert_eq!(first.items, ["a", "b"]);
        assert_eq!(first.headers.next.as_deref(), Some("c"));
        assert_eq!(first.headers.total, Some(5));
        let last = query(Some("e"), 2, false).page(items.clone(), String::as_str);
        assert_eq!(last.items, ["e"]);
        assert_eq!((last.headers.next, last.headers.total), (None, None));
        // A start that is not a key: from the next key on.
        let between = query(Some("bb"), 10, false).page(items.clone(), String::as_str);
        assert_eq!(between.items, ["c", "d", "e"]);
        // Exactly one full page: no next page.
        let exact = query(Some(""), 5, false).page(items, String::as_str);
        assert_eq!((exact.items.len(), exact.headers.next), (5, None));
    }
}

//! The incident report, markdown to HTML on the server (pulldown-cmark).
//! The report is the communication agent's own text, but it quotes
//! titles and names that came from clients, so raw HTML in it is shown as
//! text, never passed through.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd, html};

/// Two levels down, at most to `h6`: the report sits under the page's own
/// headings (the page's title is its only `h1`).
fn demote(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H3,
        HeadingLevel::H2 => HeadingLevel::H4,
        HeadingLevel::H3 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

/// `markdown` as HTML, with tables, headings demoted, and any raw HTML
/// escaped.
pub fn to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let parser = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Event::Start(Tag::Heading {
            level: demote(level),
            id,
            classes,
            attrs,
        }),
        Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(demote(level))),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, parser);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_lists_and_tables_become_html() {
        let html = to_html("# Report\n\n- one\n- two\n\n| metric | deviation |\n|---|---|\n| pool | +191.8σ |\n");
        assert!(html.contains("<h3>Report</h3>"), "{html}");
        assert!(html.contains("<li>one</li>"));
        assert!(html.contains("<table>") && html.contains("<td>+191.8σ</td>"), "{html}");
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let html = to_html("Title: <script>alert(1)</script> and <b onclick=x>bold</b>\n\n<div>block</div>\n");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b "), "{html}");
        assert!(!html.contains("<div>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }
}

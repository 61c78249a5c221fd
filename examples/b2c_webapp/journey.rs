//! A scripted browser (cookies, redirects, auto-submitted forms) and the banking journey it
//! walks: sign in, view the accounts, add a beneficiary, step up, see it added.

use std::collections::HashMap;

/// A page the browser ended on.
#[derive(Debug)]
pub(crate) struct Page {
    /// The final URL.
    pub(crate) url: String,
    /// Its status.
    pub(crate) status: u16,
    /// Its HTML.
    pub(crate) body: String,
}

/// Just enough of a browser: a cookie jar per origin, redirects (302/303 become GET), and
/// pages that post a form on load (`response_mode=form_post`).
#[derive(Debug)]
pub(crate) struct Browser {
    http: reqwest::Client,
    /// Cookies by host:port, then name.
    jar: HashMap<String, HashMap<String, String>>,
    /// Every `Set-Cookie` received, for inspection.
    pub(crate) set_cookies: Vec<String>,
    /// Every URL visited, in order.
    pub(crate) visited: Vec<String>,
}

fn origin(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}

impl Browser {
    /// A browser with an empty jar.
    pub(crate) fn new() -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            jar: HashMap::new(),
            set_cookies: Vec::new(),
            visited: Vec::new(),
        })
    }

    /// `GET url`, following redirects and form posts.
    pub(crate) async fn get(&mut self, url: &str) -> Result<Page, Box<dyn std::error::Error>> {
        self.request(reqwest::Method::GET, url, None).await
    }

    /// `POST url` with a form, following redirects and form posts.
    pub(crate) async fn post_form(
        &mut self,
        url: &str,
        fields: &[(&str, &str)],
    ) -> Result<Page, Box<dyn std::error::Error>> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.request(reqwest::Method::POST, url, Some(body)).await
    }

    async fn request(
        &mut self,
        mut method: reqwest::Method,
        url: &str,
        mut body: Option<String>,
    ) -> Result<Page, Box<dyn std::error::Error>> {
        let mut url = url::Url::parse(url)?;
        for _ in 0..20 {
            self.visited.push(url.to_string());
            let mut request = self.http.request(method.clone(), url.as_str());
            if let Some(cookies) = self.jar.get(&origin(&url)) {
                let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
                if !header.is_empty() {
                    request = request.header("cookie", header.join("; "));
                }
            }
            if let Some(form) = body.take() {
                request = request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form);
            }
            let response = request.send().await?;
            for value in response.headers().get_all("set-cookie") {
                let text = value.to_str()?.to_owned();
                if let Some((pair, _)) = text.split_once(';').or(Some((text.as_str(), "")))
                    && let Some((name, value)) = pair.split_once('=')
                {
                    let jar = self.jar.entry(origin(&url)).or_default();
                    if value.is_empty() {
                        jar.remove(name.trim());
                    } else {
                        jar.insert(name.trim().to_owned(), value.trim().to_owned());
                    }
                }
                self.set_cookies.push(text);
            }
            let status = response.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or("a redirect without Location")?;
                url = url.join(location)?;
                if status != 307 && status != 308 {
                    method = reqwest::Method::GET;
                }
                continue;
            }
            let text = response.text().await?;
            // An auto-submitting form (form_post): post its hidden inputs to its action.
            if text.contains("document.forms[0].submit()") {
                let action = text
                    .split("action=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .ok_or("a form without action")?
                    .replace("&amp;", "&");
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                for input in text.split("<input ").skip(1) {
                    let attr = |name: &str| {
                        input
                            .split(&format!("{name}=\""))
                            .nth(1)
                            .and_then(|rest| rest.split('"').next())
                            .map(|v| {
                                v.replace("&quot;", "\"")
                                    .replace("&lt;", "<")
                                    .replace("&gt;", ">")
                                    .replace("&amp;", "&")
                            })
                            .unwrap_or_default()
                    };
                    form.append_pair(&attr("name"), &attr("value"));
                }
                url = url.join(&action)?;
                method = reqwest::Method::POST;
                body = Some(form.finish());
                continue;
            }
            return Ok(Page {
                url: url.to_string(),
                status,
                body: text,
            });
        }
        Err("too many redirects".into())
    }
}

/// What the journey saw, step by step.
#[derive(Debug)]
pub(crate) struct Journey {
    /// The home page after signing in.
    pub(crate) signed_in: Page,
    /// The accounts page.
    pub(crate) accounts: Page,
    /// The page after adding the beneficiary (through the step-up).
    pub(crate) added: Page,
    /// The browser, with its cookies and history.
    pub(crate) browser: Browser,
}

/// Walks the journey against the web app at `app_url` as `username`.
pub(crate) async fn walk(
    app_url: &str,
    username: &str,
) -> Result<Journey, Box<dyn std::error::Error>> {
    let app_url = app_url.trim_end_matches('/');
    let mut browser = Browser::new()?;
    let hint: String = url::form_urlencoded::byte_serialize(username.as_bytes()).collect();
    let signed_in = browser
        .get(&format!("{app_url}/signin?login_hint={hint}"))
        .await?;
    if !signed_in.body.contains("id=\"user\"") {
        return Err(format!("sign-in did not land on the home page: {}", signed_in.body).into());
    }
    let accounts = browser.get(&format!("{app_url}/accounts")).await?;
    if !accounts.body.contains("class=\"account\"") {
        return Err(format!("no accounts shown: {}", accounts.body).into());
    }
    let added = browser
        .post_form(&format!("{app_url}/beneficiary"), &[("name", "Dora Diaz")])
        .await?;
    if !added.body.contains("id=\"added\"") {
        return Err(format!("the beneficiary was not added: {}", added.body).into());
    }
    Ok(Journey {
        signed_in,
        accounts,
        added,
        browser,
    })
}

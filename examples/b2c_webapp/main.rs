//! Pattern 4: the banking web app with Azure AD B2C. The user signs in (sign-up/sign-in user
//! flow), sees their accounts through the bank API (`Accounts.Read`), adds a beneficiary
//! (`Accounts.Write`); the API asks for MFA with a step-up challenge, the app sends the user
//! through the MFA user flow, and the retried call succeeds.
//!
//! ```sh
//! cargo run --example b2c_webapp              # offline: testkit, API and web app, then the
//!                                             # journey walked by a scripted browser
//! cargo run --example b2c_webapp -- --entra   # the Entra variant: an `acrs` claims challenge
//! cargo run --example b2c_webapp -- --serve   # keep serving for a real browser
//! ```
//!
//! Sessions are kept on the server; the browser holds one signed, http-only cookie. Tokens
//! never appear in pages or logs. Against real B2C, build `WebAppConfig` with
//! `Authority::b2c(name, "B2C_1_signupsignin")`, the app's credential and the API's URL and
//! scope prefix; the API's challenge names the MFA user flow.

mod journey;
mod offline;
mod webapp;

use std::error::Error;

use webapp::StepUp;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let step_up = if args.iter().any(|a| a == "--entra") {
        StepUp::EntraAuthContext
    } else {
        StepUp::B2cUserFlow
    };
    let world = offline::start(step_up).await?;
    println!("testkit at {}", world.testkit.base_url());
    println!("bank API at {}", world.api_url);
    println!("web app at {}  (user {})", world.app_url, offline::USER);

    if args.iter().any(|a| a == "--serve") {
        println!(
            "open {}/signin?login_hint={} in a browser; Ctrl-C stops",
            world.app_url,
            offline::USER
        );
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }

    let journey = journey::walk(&world.app_url, offline::USER).await?;
    println!("1. signed in: {}", journey.signed_in.url);
    println!("2. accounts page: HTTP {}", journey.accounts.status);
    let step_ups = journey
        .browser
        .visited
        .iter()
        .filter(|u| u.contains("/authorize"))
        .count();
    println!(
        "3. beneficiary added after a step-up ({} sign-ins at the authority: {})",
        step_ups,
        match step_up {
            StepUp::B2cUserFlow => "sign-up/sign-in, then the MFA user flow",
            StepUp::EntraAuthContext => "sign-in, then the acrs claims challenge",
        }
    );
    if step_ups != 2 || journey.added.status != 200 {
        return Err("expected exactly one step-up sign-in, then the beneficiary added".into());
    }
    Ok(())
}

//! Signs an RFC 7523 client assertion with a fixture certificate and prints its decoded header
//! and claims, then checks the signature against the certificate.
//!
//! ```sh
//! cargo run --example sign_assertion
//! ```
//!
//! With your own certificate: `cargo run --example sign_assertion -- cert.pem key.pem` (or a
//! combined PEM, or a `.pfx` with the password in `PFX_PASSWORD`).

use std::error::Error;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use confidant::{
    Algorithm, Authority, Backend, ClientAssertionBuilder, Password, PemSigner, Pkcs12Signer,
    Signer,
};

const FIXTURE_CERT: &[u8] = include_bytes!("../tests/fixtures/rsa2048.crt");
const FIXTURE_KEY: &[u8] = include_bytes!("../tests/fixtures/rsa2048.pkcs8.key");

fn load_signer(args: &[String]) -> Result<Box<dyn Signer>, Box<dyn Error>> {
    Ok(match args {
        [] => Box::new(PemSigner::from_pem(FIXTURE_CERT, FIXTURE_KEY)?),
        [pfx] if pfx.ends_with(".pfx") || pfx.ends_with(".p12") => {
            let password = std::env::var("PFX_PASSWORD").ok().map(Password::new);
            Box::new(Pkcs12Signer::from_file(pfx, password.as_ref())?)
        }
        [combined] => Box::new(PemSigner::from_combined_pem_file(combined, None)?),
        [cert, key, ..] => Box::new(PemSigner::from_pem(
            &std::fs::read(cert)?,
            &std::fs::read(key)?,
        )?),
    })
}

fn decode(part: &str) -> Result<serde_json::Value, Box<dyn Error>> {
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part)?)?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let signer = load_signer(&args)?;
    let certificate = signer
        .certificate()
        .ok_or("the signer has no certificate")?;
    println!("certificate  {}", certificate.subject());
    println!("  SHA-1      {}", certificate.sha1_hex());
    println!("  x5t        {}", certificate.x5t());
    println!("  x5t#S256   {}", certificate.x5t_s256());

    let authority = Authority::parse("https://login.microsoftonline.com/contoso.onmicrosoft.com")?;
    let client_id = "00000000-0000-0000-0000-000000000001";
    let assertion = ClientAssertionBuilder::for_authority(&authority, client_id)
        .sign(&*signer)
        .await?;

    // The assertion is a credential: print it only because this is a demo with a test key.
    let jwt = assertion.expose_secret();
    let parts: Vec<&str> = jwt.split('.').collect();
    println!(
        "\nheader   {}",
        serde_json::to_string_pretty(&decode(parts[0])?)?
    );
    println!(
        "claims   {}",
        serde_json::to_string_pretty(&decode(parts[1])?)?
    );

    let alg = Algorithm::from_name(decode(parts[0])?["alg"].as_str().unwrap_or_default())
        .ok_or("unknown alg")?;
    let signing_input = &jwt[..jwt.rfind('.').ok_or("not a JWS")?];
    let signature = URL_SAFE_NO_PAD.decode(parts[2])?;
    let verified = certificate.verify_signature(
        Backend::default(),
        alg,
        signing_input.as_bytes(),
        &signature,
    );
    println!("\n{alg} signature verifies against the certificate: {verified}");
    println!("\nclient_assertion={jwt}");
    if !verified {
        return Err("signature did not verify".into());
    }
    Ok(())
}

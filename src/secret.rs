//! Newtypes for secrets: redacted `Debug`, no `Display`, zeroized on drop.

use std::fmt;

use zeroize::Zeroizing;

macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident, $security:literal) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(Zeroizing<String>);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Zeroizing::new(value.into()))
            }

            /// The secret value.
            ///
            /// # Security
            #[doc = $security]
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }
    };
}

secret_string!(
    /// An application's client secret (password credential).
    ClientSecret,
    "Only a token request body (or its HTTP Basic header) may carry this; never log or persist it."
);

secret_string!(
    /// A password or passphrase protecting a PKCS#12 file or an encrypted PKCS#8 key.
    Password,
    "Only key decryption reads this; never log or persist it."
);

secret_string!(
    /// A bearer access token.
    AccessToken,
    "Send it only in an `Authorization: Bearer` header to the resource it was issued for."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        assert_eq!(
            format!("{:?}", ClientSecret::new("s3cr3t")),
            "ClientSecret([redacted])"
        );
        assert_eq!(
            format!("{:?}", Password::from("hunter2")),
            "Password([redacted])"
        );
        assert_eq!(
            format!("{:?}", AccessToken::from("eyJ.x.y")),
            "AccessToken([redacted])"
        );
        assert_eq!(ClientSecret::new("s3cr3t").expose_secret(), "s3cr3t");
    }
}

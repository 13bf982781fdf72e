//! Arbitrary text as a supervisord.conf, a Procfile and a crontab (with and without the user
//! column): `tend import` must give TOML or an error, never panic; the TOML it gives must
//! parse as TOML (whether it then loads is the checker's business: a stop signal tend does
//! not know, a user missing here), and loading it must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::config::import::{Format, import_text};
use tend::config::{Environment, load_str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [
        Format::Supervisord,
        Format::Procfile,
        Format::CronD,
        Format::UserCrontab,
    ] {
        if let Ok(imported) = import_text(format, "fuzz.conf", text) {
            if let Err(e) = toml::from_str::<toml::Table>(&imported.toml) {
                panic!("not TOML: {e}\n{}", imported.toml);
            }
            let _ = load_str(
                &imported.toml,
                "imported.toml",
                &std::env::temp_dir(),
                &Environment::default(),
            );
        }
    }
});

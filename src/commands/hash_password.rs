//! `relay hash-password`: turns a password (first line of standard input)
//! into the credential `[broker.sasl.users]` stores, so no config file ever
//! holds a password the broker checks against.

use crate::cli::HashPasswordArgs;
use crate::exit;
use relay_proto::sasl::Credential;
use std::io::{BufRead, IsTerminal};

pub fn run(args: HashPasswordArgs) -> i32 {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("relay hash-password: type the password and press Enter (it is shown as you type; pipe it in to avoid that)");
    }
    let mut line = String::new();
    if let Err(error) = stdin.lock().read_line(&mut line) {
        eprintln!("relay hash-password: reading standard input: {error}");
        return exit::FAILURE;
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!("relay hash-password: the password is empty (give it on the first line of standard input)");
        return exit::USAGE;
    }
    match Credential::from_password(password, args.iterations) {
        Ok(credential) => {
            println!("{credential}");
            exit::SUCCESS
        }
        Err(error) => {
            eprintln!("relay hash-password: --iterations: {error}");
            exit::USAGE
        }
    }
}

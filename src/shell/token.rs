//! The one map of epoll tokens. Every descriptor in tend's epoll set is named by a [`Token`],
//! encoded into epoll's 64-bit data word when it is registered and decoded back when it is
//! ready, for one exhaustive `match` in the loop: no ranges spread over several files, no
//! dispatch that depends on the order of guard arms.
//!
//! The word holds the kind in its top byte and the kind's number (a service, a connection,
//! a probe attempt) below it.

use super::logs::Stream;
use rustix::event::epoll::EventData;

/// What a ready descriptor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// The signalfd.
    Signals,
    /// tend's own stdout or stderr, watched for room while output is queued.
    Output(Stream),
    /// The read end of a service's stdout or stderr pipe.
    Source { svc: usize, stream: Stream },
    /// The control socket's listener.
    ControlListener,
    /// A control connection, by its number.
    ControlConn(usize),
    /// The HTTP endpoints' listener.
    HttpListener,
    /// An HTTP connection, by its number.
    HttpConn(usize),
    /// A probe attempt's socket (tcp, http, or its DNS lookup), by attempt id.
    Probe(u64),
    /// A service's readiness channel (notification fd or sd_notify socket).
    Notify(usize),
    /// The wall-clock timer of scheduled tasks (`sys::timer`).
    WallTimer,
}

const KIND_SHIFT: u32 = 56;

/// Numbers (connections, attempts) wrap below this: it is what fits below the kind.
pub const NUMBERS: u64 = 1 << KIND_SHIFT;

impl Token {
    pub fn encode(self) -> u64 {
        let (kind, number) = match self {
            Token::Signals => (0, 0),
            Token::Output(stream) => (1, stream as u64),
            Token::Source { svc, stream } => (2, svc as u64 * 2 + stream as u64),
            Token::ControlListener => (3, 0),
            Token::ControlConn(conn) => (4, conn as u64),
            Token::HttpListener => (5, 0),
            Token::HttpConn(conn) => (6, conn as u64),
            Token::Probe(id) => (7, id),
            Token::Notify(svc) => (8, svc as u64),
            Token::WallTimer => (9, 0),
        };
        (kind << KIND_SHIFT) | (number % NUMBERS)
    }

    /// The token `encode` made this word from; None for a word it cannot have made.
    pub fn decode(word: u64) -> Option<Token> {
        let number = word % NUMBERS;
        let stream = |n: u64| match n {
            0 => Some(Stream::Stdout),
            1 => Some(Stream::Stderr),
            _ => None,
        };
        let index = usize::try_from(number).ok()?;
        Some(match word >> KIND_SHIFT {
            0 => Token::Signals,
            1 => Token::Output(stream(number)?),
            2 => Token::Source {
                svc: index / 2,
                stream: stream(number % 2)?,
            },
            3 => Token::ControlListener,
            4 => Token::ControlConn(index),
            5 => Token::HttpListener,
            6 => Token::HttpConn(index),
            7 => Token::Probe(number),
            8 => Token::Notify(index),
            9 => Token::WallTimer,
            _ => return None,
        })
    }

    /// The word epoll keeps for this token.
    pub fn data(self) -> EventData {
        EventData::new_u64(self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_comes_back_as_itself() {
        let tokens = [
            Token::Signals,
            Token::Output(Stream::Stdout),
            Token::Output(Stream::Stderr),
            Token::Source {
                svc: 0,
                stream: Stream::Stdout,
            },
            Token::Source {
                svc: 99,
                stream: Stream::Stderr,
            },
            Token::ControlListener,
            Token::ControlConn(0),
            Token::ControlConn(63),
            Token::HttpListener,
            Token::HttpConn(12345),
            Token::Probe(0),
            Token::Probe(NUMBERS - 1),
            Token::Notify(7),
            Token::WallTimer,
        ];
        for token in tokens {
            assert_eq!(Token::decode(token.encode()), Some(token), "{token:?}");
        }
        // No two tokens share a word.
        let words: std::collections::HashSet<u64> = tokens.iter().map(|t| t.encode()).collect();
        assert_eq!(words.len(), tokens.len());
    }

    #[test]
    fn a_word_no_token_makes_is_none() {
        assert_eq!(Token::decode(10 << KIND_SHIFT), None);
        assert_eq!(Token::decode(u64::MAX), None);
        assert_eq!(Token::decode((1 << KIND_SHIFT) | 2), None, "a third stream");
    }

    #[test]
    fn numbers_wrap_below_the_kind() {
        assert_eq!(
            Token::decode(Token::Probe(NUMBERS + 5).encode()),
            Some(Token::Probe(5))
        );
    }
}

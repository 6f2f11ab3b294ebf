//! The one verdict function: what an exchange's record says of its push, for every mode.

use crate::model::{Exchange, ExchangeNote, Verdict};

impl Verdict {
    /// The verdict on `ex` as its record stands. Inside TLS without keys, an answer's records
    /// make `encrypted_answered` (never `ok`: a 400 looks the same). Otherwise 200 is `ok`, another final status
    /// `error_status`; without an answer, an unreadable answer or a capture loss that may hold it
    /// comes first, then `no_response` for a complete request and `incomplete` for the rest.
    /// Final once the connection is over; on an open connection the same judgement is provisional
    /// (a request still waiting is timed out by the live diagnosis, not here).
    pub fn of(ex: &Exchange) -> Verdict {
        if let Some(tls) = &ex.encrypted {
            // Read without keys: an answer's records came or not; its status is unknown.
            return match (&tls.response, tls.uncertain) {
                (Some(_), _) => Verdict::EncryptedAnswered,
                (None, Some(crate::tls::Uncertainty::CaptureGap)) => Verdict::NotCaptured,
                (None, _) => Verdict::NoResponse,
            };
        }
        let noted = |f: fn(&ExchangeNote) -> bool| ex.notes.iter().any(f);
        match &ex.response {
            Some(r) if r.status == 200 => Verdict::Ok,
            Some(_) => Verdict::ErrorStatus,
            None if noted(|n| matches!(n, ExchangeNote::MalformedResponse { .. })) => {
                Verdict::MalformedResponse
            }
            None if noted(|n| matches!(n, ExchangeNote::AnswerNotCaptured { .. })) => {
                Verdict::NotCaptured
            }
            None if ex.request.complete => Verdict::NoResponse,
            None => Verdict::Incomplete,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::http::{HttpErrorKind, Kind};
    use crate::model::{Exchange, ExchangeNote, Request, Response, Verdict};
    use crate::time::Timestamp;

    fn ex(complete: bool, status: Option<u16>, notes: Vec<ExchangeNote>) -> Exchange {
        let mut e = Exchange::started(
            0,
            Request {
                complete,
                ..Request::default()
            },
        );
        e.response = status.map(|status| Response {
            status,
            ..Response::default()
        });
        e.notes = notes;
        e
    }

    #[test]
    fn answered_requests_are_judged_by_their_status() {
        assert_eq!(Verdict::of(&ex(true, Some(200), vec![])), Verdict::Ok);
        assert_eq!(
            Verdict::of(&ex(true, Some(503), vec![])),
            Verdict::ErrorStatus
        );
        // An answer to an unfinished request (413 mid-body) is still an answer.
        assert_eq!(
            Verdict::of(&ex(false, Some(413), vec![])),
            Verdict::ErrorStatus
        );
        // A note does not override an answer that was read.
        let lost = ExchangeNote::AnswerNotCaptured { at: Timestamp(5) };
        assert_eq!(Verdict::of(&ex(true, Some(200), vec![lost])), Verdict::Ok);
    }

    #[test]
    fn unanswered_requests_say_why_no_answer_was_read() {
        assert_eq!(Verdict::of(&ex(true, None, vec![])), Verdict::NoResponse);
        assert_eq!(Verdict::of(&ex(false, None, vec![])), Verdict::Incomplete);
        let lost = ExchangeNote::AnswerNotCaptured { at: Timestamp(5) };
        assert_eq!(
            Verdict::of(&ex(true, None, vec![lost.clone()])),
            Verdict::NotCaptured
        );
        let bad = ExchangeNote::MalformedResponse {
            offset: 0,
            error: HttpErrorKind::MalformedHead {
                kind: Kind::Response,
                reason: None,
                start_line: "HTTP/1.0 2XX OK".into(),
            },
            at: Timestamp(6),
        };
        // The unreadable answer was seen: it outranks the loss, which may have held another.
        assert_eq!(
            Verdict::of(&ex(true, None, vec![lost, bad])),
            Verdict::MalformedResponse
        );
    }
}

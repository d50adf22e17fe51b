//! Who answers a request: the one state machine that decides it.
//!
//! Every path that could answer a frame — a Python `unwind`/`error`, an
//! exception, a dropped `Frame`, a reply passed straight up, a coroutine
//! that returns, times out or is cancelled, a panic in the host — asks this
//! machine first, under one lock, and only the path it says yes to touches
//! the C frame. The rules (SAFETY.md repeats them):
//!
//! 1. A request is answered exactly once. After that every attempt is
//!    refused (Python sees `RuntimeError`).
//! 2. Python holds a request in *turns*. The fop method's call opens turn 0.
//!    A synchronous wind hands the turn to the child; its reply opens the next
//!    turn, for the callback (or passes straight up when there is none).
//!    Only the holders of the current turn may wind or answer; a `Frame`
//!    object from an earlier turn is refused ("answer from the callback").
//! 3. Raised after winding: the wind's reply stands. An exception (or a
//!    `FopError`) from a method whose turn ended with a wind is logged, and
//!    the request is answered by the reply, whatever thread it came back on
//!    and whenever.
//! 4. A coroutine (`async def`) keeps its turn while its winds are out. An
//!    answer it gives then (a returned `Reply`, an error, a timeout, a
//!    cancellation) is kept and given as soon as the last wind is back: no
//!    frame is unwound under a wind in flight, and the answer is not lost.
//! 5. When the last holder of the current turn lets go (a `Frame` dropped,
//!    a job that ended or panicked) without winding or answering, the request
//!    is answered EIO and logged; with winds still out, once they are back.
//! 6. When the translator shuts down (its graph goes down, or a reload
//!    retires it), a request Python still holds is answered with the
//!    shutdown's errno (once its winds are back); one wound below is answered
//!    by the child's reply, passed straight up without Python.
//!
//! `Control` is plain data with no GlusterFS in it, so the rules are unit
//! tested here; `frame::FrameState` holds it under a mutex and performs what
//! it decides.

use std::fmt;

/// The answer a request gets, once the machine says so.
pub enum Answer<R> {
    /// op_ret -1 with this errno.
    Error(i32),
    /// op_ret -1, EIO: the last holder let go without answering (logged).
    Dropped,
    /// A full reply (op_ret, op_errno and the callback's values).
    Reply(R),
}

/// Where a request stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// The current turn's holders may wind or answer.
    Pending,
    /// Wound synchronously: the reply opens the next turn.
    Wound,
    /// Answered (or its answer is decided and waits for winds in flight).
    Answered,
}

/// The right to act on a request in one turn. Every Python `Frame` object
/// and every host job that may answer holds one; `Control::release` takes
/// it back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ticket {
    turn: u32,
}

impl Ticket {
    pub fn turn(self) -> u32 {
        self.turn
    }
}

/// Why an attempt to act was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refusal {
    /// Already answered (or its answer waits for winds in flight).
    Answered,
    /// Wound synchronously and not back yet: its reply is the answer.
    Wound,
    /// This turn ended with a wind whose reply went on to a later turn.
    PastTurn,
}

impl Refusal {
    pub fn message(self, fop: &str) -> String {
        match self {
            Refusal::Answered => {
                format!("this {fop} frame was already answered (each request is answered exactly once)")
            }
            Refusal::Wound => format!(
                "this {fop} frame is wound: it is answered from its callback (or by the child's reply)"
            ),
            Refusal::PastTurn => format!(
                "this {fop} frame was wound: its reply went on to the callback (or up, with no \
                 callback) and stands; answer or wind from {fop}_cbk's frame"
            ),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message("request"))
    }
}

enum Stage<R> {
    Pending,
    Wound,
    /// Answer decided while a coroutine's winds are out.
    Waiting(Answer<R>),
    Answered,
}

/// What a decision asks its caller to do.
pub enum Go<R> {
    /// Answer now, with this; the caller alone touches the frame.
    Answer(Answer<R>),
    /// Nothing to do now.
    Nothing,
}

impl<R> Go<R> {
    pub fn is_nothing(&self) -> bool {
        matches!(self, Go::Nothing)
    }
}

pub struct Control<R> {
    stage: Stage<R>,
    turn: u32,
    /// Holders of the current turn's tickets.
    holders: usize,
    /// Winds of a coroutine still out (a synchronous wind is `Stage::Wound`).
    winds: usize,
    asynchronous: bool,
    /// The translator shut down: replies go straight up, not to Python.
    shut: bool,
}

impl<R> Control<R> {
    /// A request that just arrived: turn 0, held by the one ticket returned.
    pub fn new() -> (Self, Ticket) {
        let control = Control {
            stage: Stage::Pending,
            turn: 0,
            holders: 1,
            winds: 0,
            asynchronous: false,
            shut: false,
        };
        (control, Ticket { turn: 0 })
    }

    pub fn phase(&self) -> Phase {
        match self.stage {
            Stage::Pending => Phase::Pending,
            Stage::Wound => Phase::Wound,
            Stage::Waiting(_) | Stage::Answered => Phase::Answered,
        }
    }

    pub fn is_asynchronous(&self) -> bool {
        self.asynchronous
    }

    /// The turn whose one ticket is, alone, all that can still act on the
    /// request: one holder, no wind out (a reply would open a turn of its
    /// own). Only the holder of that ticket can move the request on, so a
    /// `Frame` holding it may show the collector what the request holds
    /// for Python (frame.rs, `__traverse__`). A change of this that no
    /// holder makes (a reply, a shutdown, a job's ticket let go) only ever
    /// makes it Some, never takes it from the holder.
    pub fn sole_turn(&self) -> Option<u32> {
        (self.holders == 1 && self.winds == 0 && !matches!(self.stage, Stage::Wound))
            .then_some(self.turn)
    }

    /// Whether only Python can move the request on: not answered, and no
    /// wind of it out (the collector's watch, `collector.rs`).
    pub fn waits_on_python(&self) -> bool {
        matches!(self.stage, Stage::Pending) && self.winds == 0
    }

    /// Whether `ticket` may act now. A past turn's holder is told so even
    /// once the request is answered: its wind's reply answered it.
    fn check(&self, ticket: Ticket) -> Result<(), Refusal> {
        match self.stage {
            _ if ticket.turn != self.turn => Err(Refusal::PastTurn),
            Stage::Waiting(_) | Stage::Answered => Err(Refusal::Answered),
            Stage::Wound => Err(Refusal::Wound),
            Stage::Pending => Ok(()),
        }
    }

    /// The current turn is a coroutine's: winds may overlap and the turn
    /// stays with it.
    pub fn set_asynchronous(&mut self, ticket: Ticket) -> Result<(), Refusal> {
        self.check(ticket)?;
        self.asynchronous = true;
        Ok(())
    }

    /// Whether the holder of `ticket` may still answer or wind (nothing
    /// changes): asked before anything of the translator's xlator is read
    /// for the call, which a request answered long ago may outlive.
    pub fn may_act(&self, ticket: Ticket) -> Result<(), Refusal> {
        self.check(ticket)
    }

    /// A wind by the holder of `ticket` is about to be made.
    pub fn wind(&mut self, ticket: Ticket) -> Result<(), Refusal> {
        self.check(ticket)?;
        if self.asynchronous {
            self.winds += 1;
        } else {
            self.stage = Stage::Wound;
        }
        Ok(())
    }

    /// A synchronous wind's reply came back: it opens the next turn, held
    /// by the returned ticket (the callback's job). None if the frame was
    /// not wound synchronously (a host bug: logged by the caller).
    pub fn reply_for_callback(&mut self) -> Option<Ticket> {
        if !matches!(self.stage, Stage::Wound) || self.shut {
            return None; // (shut down: the reply passes up instead)
        }
        self.stage = Stage::Pending;
        self.turn += 1;
        self.holders = 1;
        Some(Ticket { turn: self.turn })
    }

    /// A synchronous wind's reply came back and no callback is in Python:
    /// it is the answer (a turn of its own, over at once). True if the
    /// caller is to pass it up.
    pub fn reply_passes_up(&mut self) -> bool {
        if !matches!(self.stage, Stage::Wound) {
            return false;
        }
        self.stage = Stage::Answered;
        self.turn += 1;
        true
    }

    /// A synchronous wind's reply came back but was lost before the
    /// machine was told (a panic in the callback entry): the request is
    /// answered `Error(errno)` in its place, once. Nothing if the reply was
    /// taken already (its turn's ticket answers then).
    pub fn reply_lost(&mut self, errno: i32) -> Go<R> {
        if !matches!(self.stage, Stage::Wound) {
            return Go::Nothing;
        }
        self.stage = Stage::Answered;
        self.turn += 1;
        Go::Answer(Answer::Error(errno))
    }

    /// One of a coroutine's winds came back: an answer waiting for it is
    /// given once none is out.
    pub fn async_reply(&mut self) -> Go<R> {
        self.winds = self.winds.saturating_sub(1);
        self.give_if_idle()
    }

    fn give_if_idle(&mut self) -> Go<R> {
        if self.winds > 0 || !matches!(self.stage, Stage::Waiting(_)) {
            return Go::Nothing;
        }
        match std::mem::replace(&mut self.stage, Stage::Answered) {
            Stage::Waiting(answer) => Go::Answer(answer),
            _ => unreachable!("checked above"),
        }
    }

    /// The holder of `ticket` answers (unwind, error, an exception before
    /// any wind, a coroutine's end): now, or once the winds out are back.
    pub fn answer(&mut self, ticket: Ticket, answer: Answer<R>) -> Result<Go<R>, Refusal> {
        self.check(ticket)?;
        if self.winds > 0 {
            self.stage = Stage::Waiting(answer);
            return Ok(Go::Nothing);
        }
        self.stage = Stage::Answered;
        Ok(Go::Answer(answer))
    }

    /// The holder of `ticket` lets go of it. The last holder of a pending
    /// turn leaving answers it `Dropped` (now or when its winds are back).
    pub fn release(&mut self, ticket: Ticket) -> Go<R> {
        if ticket.turn != self.turn || !matches!(self.stage, Stage::Pending) {
            return Go::Nothing; // an earlier turn's, or the turn ended
        }
        self.holders = self.holders.saturating_sub(1);
        if self.holders > 0 {
            return Go::Nothing;
        }
        self.stage = Stage::Waiting(Answer::Dropped);
        self.give_if_idle()
    }

    /// The translator shut down: a request Python holds is answered
    /// `Error(errno)` now (or when its coroutine's winds are back); a wound
    /// one is answered by its reply, which no longer goes to Python.
    pub fn shut_down(&mut self, errno: i32) -> Go<R> {
        self.shut = true;
        match self.stage {
            // A reply kept for winds still out would carry values of a
            // graph that is going away: the shutdown's error instead.
            Stage::Pending | Stage::Waiting(Answer::Reply(_)) => {
                self.stage = Stage::Waiting(Answer::Error(errno));
                self.give_if_idle()
            }
            _ => Go::Nothing,
        }
    }

    /// One more holder of the current turn (a second job sharing a ticket).
    #[cfg(test)]
    fn hold(&mut self, ticket: Ticket) -> Result<Ticket, Refusal> {
        self.check(ticket)?;
        self.holders += 1;
        Ok(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type C = Control<&'static str>;

    fn answered_with<R: fmt::Debug>(go: Go<R>) -> String {
        match go {
            Go::Answer(Answer::Error(e)) => format!("error {e}"),
            Go::Answer(Answer::Dropped) => "dropped".into(),
            Go::Answer(Answer::Reply(r)) => format!("reply {r:?}"),
            Go::Nothing => "nothing".into(),
        }
    }

    #[test]
    fn a_fop_that_answers_is_answered_once() {
        let (mut c, t) = C::new();
        assert_eq!(
            answered_with(c.answer(t, Answer::Reply("r")).unwrap()),
            "reply \"r\""
        );
        assert_eq!(c.answer(t, Answer::Error(5)).err(), Some(Refusal::Answered));
        assert_eq!(c.wind(t).err(), Some(Refusal::Answered));
        assert!(c.release(t).is_nothing());
        assert_eq!(c.phase(), Phase::Answered);
    }

    #[test]
    fn raised_after_winding_the_reply_stands_whenever_it_comes_back() {
        // The reply comes back before the fop's exception is reported...
        let (mut c, fop) = C::new();
        c.wind(fop).unwrap();
        let cbk = c.reply_for_callback().unwrap();
        assert_eq!(
            c.answer(fop, Answer::Error(5)).err(),
            Some(Refusal::PastTurn)
        );
        assert_eq!(
            answered_with(c.answer(cbk, Answer::Reply("create ok")).unwrap()),
            "reply \"create ok\""
        );
        // ... or after it.
        let (mut c, fop) = C::new();
        c.wind(fop).unwrap();
        assert_eq!(c.answer(fop, Answer::Error(5)).err(), Some(Refusal::Wound));
        assert!(
            c.release(fop).is_nothing(),
            "the fop's frame going away answers nothing"
        );
        assert!(c.reply_passes_up());
        assert_eq!(c.phase(), Phase::Answered);
        // The reply passed up: the fop is still told its wind answered.
        assert_eq!(
            c.answer(fop, Answer::Error(5)).err(),
            Some(Refusal::PastTurn)
        );
    }

    #[test]
    fn a_past_turns_frame_cannot_unwind_wind_or_drop_the_callbacks_turn() {
        let (mut c, fop) = C::new();
        c.wind(fop).unwrap();
        let cbk = c.reply_for_callback().unwrap();
        assert_eq!(c.wind(fop).err(), Some(Refusal::PastTurn));
        assert!(c.release(fop).is_nothing());
        assert_eq!(c.phase(), Phase::Pending, "the callback still holds it");
        // The callback winds again; its reply passes up.
        c.wind(cbk).unwrap();
        assert!(c.reply_passes_up());
    }

    #[test]
    fn the_last_holder_leaving_a_pending_turn_answers_dropped_once() {
        let (mut c, t) = C::new();
        let second = c.hold(t).unwrap();
        assert!(c.release(t).is_nothing());
        assert_eq!(answered_with(c.release(second)), "dropped");
        assert!(c.release(second).is_nothing());
        assert_eq!(c.answer(t, Answer::Error(2)).err(), Some(Refusal::Answered));
    }

    #[test]
    fn a_callbacks_turn_dropped_answers_dropped() {
        let (mut c, fop) = C::new();
        c.wind(fop).unwrap();
        let cbk = c.reply_for_callback().unwrap();
        assert!(c.release(fop).is_nothing());
        assert_eq!(answered_with(c.release(cbk)), "dropped");
    }

    #[test]
    fn a_coroutines_answer_waits_for_its_winds_and_is_not_lost() {
        let (mut c, t) = C::new();
        c.set_asynchronous(t).unwrap();
        c.wind(t).unwrap();
        c.wind(t).unwrap();
        assert!(c.async_reply().is_nothing());
        // Returns its Reply while the sibling wind is still out.
        assert!(c.answer(t, Answer::Reply("mine")).unwrap().is_nothing());
        assert_eq!(c.phase(), Phase::Answered, "Python sees it answered");
        assert_eq!(
            c.answer(t, Answer::Error(110)).err(),
            Some(Refusal::Answered)
        );
        assert!(c.release(t).is_nothing());
        assert_eq!(answered_with(c.async_reply()), "reply \"mine\"");
        assert!(c.async_reply().is_nothing());
    }

    #[test]
    fn a_coroutine_dropped_with_winds_out_is_answered_when_they_return() {
        let (mut c, t) = C::new();
        c.set_asynchronous(t).unwrap();
        c.wind(t).unwrap();
        assert!(c.release(t).is_nothing());
        assert_eq!(answered_with(c.async_reply()), "dropped");
    }

    #[test]
    fn a_coroutines_timeout_with_no_wind_out_answers_now() {
        let (mut c, t) = C::new();
        c.set_asynchronous(t).unwrap();
        c.wind(t).unwrap();
        assert!(c.async_reply().is_nothing());
        assert_eq!(
            answered_with(c.answer(t, Answer::Error(110)).unwrap()),
            "error 110"
        );
    }

    #[test]
    fn shutting_down_answers_what_python_holds_and_lets_wound_replies_pass_up() {
        let (mut c, t) = C::new();
        assert_eq!(answered_with(c.shut_down(5)), "error 5");
        assert_eq!(c.answer(t, Answer::Error(1)).err(), Some(Refusal::Answered));
        let (mut c, t) = C::new();
        c.wind(t).unwrap();
        assert!(c.shut_down(5).is_nothing());
        assert!(
            c.reply_for_callback().is_none(),
            "no callback in Python after shutdown"
        );
        assert!(c.reply_passes_up());
        let (mut c, t) = C::new();
        c.set_asynchronous(t).unwrap();
        c.wind(t).unwrap();
        assert!(c.shut_down(5).is_nothing());
        assert_eq!(answered_with(c.async_reply()), "error 5");
        // A reply kept for a wind still out is not sent after a shutdown.
        let (mut c, t) = C::new();
        c.set_asynchronous(t).unwrap();
        c.wind(t).unwrap();
        assert!(c.answer(t, Answer::Reply("stale")).unwrap().is_nothing());
        assert!(c.shut_down(5).is_nothing());
        assert_eq!(answered_with(c.async_reply()), "error 5");
    }

    #[test]
    fn a_lost_reply_answers_once_and_never_after_it_was_taken() {
        let (mut c, fop) = C::new();
        c.wind(fop).unwrap();
        assert_eq!(answered_with(c.reply_lost(5)), "error 5");
        assert!(c.reply_lost(5).is_nothing());
        assert!(!c.reply_passes_up());
        assert_eq!(
            c.answer(fop, Answer::Error(1)).err(),
            Some(Refusal::PastTurn)
        );
        // Taken by the callback's turn: that ticket answers, not the loss.
        let (mut c, fop) = C::new();
        c.wind(fop).unwrap();
        let cbk = c.reply_for_callback().unwrap();
        assert!(c.reply_lost(5).is_nothing());
        assert_eq!(answered_with(c.release(cbk)), "dropped");
        // A coroutine's wind is not synchronous: nothing to lose here.
        let (mut c, t) = C::new();
        c.set_asynchronous(t).unwrap();
        c.wind(t).unwrap();
        assert!(c.reply_lost(5).is_nothing());
        assert!(c.async_reply().is_nothing());
    }

    #[test]
    fn a_reply_that_was_not_wound_for_is_not_taken() {
        let (mut c, t) = C::new();
        assert!(c.reply_for_callback().is_none());
        assert!(!c.reply_passes_up());
        assert_eq!(
            answered_with(c.answer(t, Answer::Error(1)).unwrap()),
            "error 1"
        );
        assert!(!c.reply_passes_up());
    }

    /// Every order of three events on a synchronous fop that winds, then
    /// raises (answer EIO) while its reply arrives: exactly one answer, and
    /// it is always the child's reply.
    #[test]
    fn only_the_sole_holder_of_an_idle_turn_is_named_and_nothing_else_unnames_it() {
        // A new request: its fop's ticket alone can act.
        let (mut c, fop) = C::new();
        assert_eq!(c.sole_turn(), Some(fop.turn()));
        // A second holder: neither is alone; the other letting go names it again.
        let other = c.hold(fop).unwrap();
        assert_eq!(c.sole_turn(), None);
        assert!(c.release(other).is_nothing());
        assert_eq!(c.sole_turn(), Some(fop.turn()));
        // Wound: the reply will act, not the holder; the reply opens a new
        // turn, never the wound one again.
        c.wind(fop).unwrap();
        assert_eq!(c.sole_turn(), None);
        let cbk = c.reply_for_callback().unwrap();
        assert_eq!(c.sole_turn(), Some(cbk.turn()));
        assert_ne!(cbk.turn(), fop.turn());
        // A shutdown keeps the holder named (it answers; local goes then).
        assert!(!c.shut_down(libc::ESHUTDOWN).is_nothing());
        assert_eq!(c.sole_turn(), Some(cbk.turn()));

        // A coroutine: named only while none of its winds is out.
        let (mut c, fop) = C::new();
        c.set_asynchronous(fop).unwrap();
        c.wind(fop).unwrap();
        c.wind(fop).unwrap();
        assert_eq!(c.sole_turn(), None);
        assert!(c.async_reply().is_nothing());
        assert_eq!(c.sole_turn(), None);
        assert!(c.async_reply().is_nothing());
        assert_eq!(c.sole_turn(), Some(fop.turn()));
    }

    #[test]
    fn every_interleaving_of_raise_drop_and_reply_answers_once_with_the_reply() {
        #[derive(Clone, Copy, Debug)]
        enum Ev {
            Raise,
            DropFop,
            Reply,
            CbkUnwind,
        }
        let orders = [
            [Ev::Raise, Ev::DropFop, Ev::Reply, Ev::CbkUnwind],
            [Ev::Raise, Ev::Reply, Ev::DropFop, Ev::CbkUnwind],
            [Ev::Reply, Ev::Raise, Ev::DropFop, Ev::CbkUnwind],
            [Ev::Reply, Ev::Raise, Ev::CbkUnwind, Ev::DropFop],
            [Ev::Reply, Ev::CbkUnwind, Ev::Raise, Ev::DropFop],
            [Ev::Reply, Ev::DropFop, Ev::CbkUnwind, Ev::Raise],
        ];
        for order in orders {
            let (mut c, fop) = C::new();
            c.wind(fop).unwrap();
            let mut cbk = None;
            let mut answers = Vec::new();
            for ev in order {
                let go = match ev {
                    Ev::Raise => c.answer(fop, Answer::Error(5)).unwrap_or(Go::Nothing),
                    Ev::DropFop => c.release(fop),
                    Ev::Reply => {
                        cbk = c.reply_for_callback();
                        Go::Nothing
                    }
                    Ev::CbkUnwind => c
                        .answer(cbk.unwrap(), Answer::Reply("child's"))
                        .unwrap_or(Go::Nothing),
                };
                if !go.is_nothing() {
                    answers.push(answered_with(go));
                }
            }
            assert_eq!(answers, vec!["reply \"child's\"".to_string()], "{order:?}");
        }
    }
}

"""A child that answers a request it kept while it handles another one,
on the same thread, inside the parent's synchronous wind (as features/locks
grants a waiting lock when another request unlocks).

role lower: getxattr user.kr.hold is kept, unanswered; getxattr
user.kr.release answers the kept one, then waits (up to `wait` seconds)
until the layer above has run its callback for it, and answers
{"callback_ran": true/false} as JSON.
role upper (above it): winds every getxattr synchronously; its callback
notes the reply of user.kr.hold (unless option notes is "no") and unwinds.
"""
import json
import sys
import threading

import glupy

# One event for both instances (each has its own module namespace).
HELD_REPLY_SEEN = sys.__dict__.setdefault("_glupy_test_kept_reply_seen", threading.Event())


class xlator(glupy.Translator):
    def __init__(self, xl):
        super().__init__(xl)
        self.role = self.options.get("role", "upper")
        self.wait = float(self.options.get("wait", "20"))
        self.notes = self.options.get("notes", "yes") == "yes"
        self.kept = None
        self.have_kept = threading.Event()

    def getxattr_fop(self, frame, this, loc, name, xdata):
        if self.role == "lower" and name == "user.kr.hold":
            self.kept = frame
            self.have_kept.set()
            return
        if self.role == "lower" and name == "user.kr.release":
            self.have_kept.wait(self.wait)
            kept, self.kept = self.kept, None
            value = b"held"
            kept.unwind(len(value), 0, {"user.kr.hold": value}, None)
            ran = HELD_REPLY_SEEN.wait(self.wait)
            answer = json.dumps({"callback_ran": ran}).encode()
            frame.unwind(len(answer), 0, {name: answer}, None)
            return
        frame.wind(loc, name, xdata)

    def getxattr_cbk(self, frame, cookie, this, op_ret, op_errno, dict, xdata):
        if self.role == "upper" and self.notes and dict is not None and "user.kr.hold" in dict:
            HELD_REPLY_SEEN.set()
        frame.unwind(op_ret, op_errno, dict, xdata)

"""aiosmtpd handler for the gateway's tests: aiosmtpd's Mailbox (each message stored in
a Maildir) that accepts AUTH PLAIN for the user and password in MFAD_TEST_SMTP_USER and
MFAD_TEST_SMTP_PASSWORD and refuses MAIL FROM before it, as a submission server does.

    PYTHONPATH=<dir of this file> python3 -m aiosmtpd -n -l 127.0.0.1:2525 \
        -c authmailbox.AuthMailbox /tmp/maildir
"""
import base64
import os

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult


class AuthMailbox(Mailbox):
    async def auth_PLAIN(self, server, args):
        # Only the initial-response form, which Go's net/smtp sends: AUTH PLAIN <b64>.
        # handled=False: aiosmtpd then answers 535 itself.
        if len(args) != 2:
            return AuthResult(success=False, handled=False)
        try:
            _, user, password = base64.b64decode(args[1]).split(b"\0")
        except ValueError:
            return AuthResult(success=False, handled=False)
        want = (os.environ["MFAD_TEST_SMTP_USER"], os.environ["MFAD_TEST_SMTP_PASSWORD"])
        return AuthResult(success=(user.decode(), password.decode()) == want, handled=False)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

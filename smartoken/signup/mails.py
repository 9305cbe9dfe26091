"""The mails of sign-up and password reset, in the visitor's language (gettext, the console's
catalog). Each is (subject, text, html); links stand alone on their own line in the text."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from smartoken.i18n.catalog import translations


@dataclass(frozen=True, slots=True)
class Mail:
    subject: str
    text: str
    html: str


def _compose(subject: str, before: list[str], link: str, button: str,
             after: list[str]) -> Mail:
    """Strings already translated; ``link`` goes in the text alone on a line, in the HTML as
    a button and spelled out."""
    text = "\n\n".join([*before, link, *after, "— SmarToken"]) + "\n"
    parts = [Markup("<p>{}</p>").format(p) for p in before]
    parts.append(Markup('<p><a href="{0}" style="display:inline-block;padding:10px 18px;'
                        'background:#2563eb;color:#fff;border-radius:6px;'
                        'text-decoration:none">{1}</a></p><p style="color:#666;'
                        'font-size:12px">{0}</p>').format(link, button))
    parts.extend(Markup("<p>{}</p>").format(p) for p in after)
    html = Markup('<!doctype html><html><body style="font-family:sans-serif">{}'
                  "<p>— SmarToken</p></body></html>").format(Markup("").join(parts))
    return Mail(subject, text, str(html))


def verify_mail(locale: str, link: str, hours: int) -> Mail:
    _ = translations(locale).gettext
    return _compose(
        _("Confirm your email address"),
        [_("Welcome to SmarToken. Confirm your email address to finish signing up:")],
        link, _("Confirm my email"),
        [_("The link works for %(hours)d hours.") % {"hours": hours},
         _("If you did not sign up, ignore this mail.")])


def already_registered_mail(locale: str, login_link: str, forgot_link: str) -> Mail:
    _ = translations(locale).gettext
    return _compose(
        _("Someone tried to sign up with your email address"),
        [_("Someone (perhaps you) tried to create a SmarToken account with this email "
           "address, which already has one. Sign in here:")],
        login_link, _("Sign in"),
        [_("Forgot your password? Reset it here:"), forgot_link,
         _("If it was not you, ignore this mail: nothing changed.")])


def reset_mail(locale: str, link: str, minutes: int) -> Mail:
    _ = translations(locale).gettext
    return _compose(
        _("Reset your SmarToken password"),
        [_("Someone (perhaps you) asked to reset the password of your SmarToken account. "
           "Choose a new password here:")],
        link, _("Choose a new password"),
        [_("The link works for %(minutes)d minutes, once.") % {"minutes": minutes},
         _("If you did not ask, ignore this mail: your password stays as it is.")])

"""Sign-up, email verification, password reset, invite codes and the trial credit (issue 15).

``rules.py`` checks what a visitor types, ``links.py`` signs the links mailed out,
``mails.py`` writes the mails, ``service.py`` ties them to the store and the mailer;
``api/signup.py`` and ``console/signup.py`` are the two doors in.
"""

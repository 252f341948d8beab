from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person who signs in to reviewapp. Their role is the Django group they belong to (see roles.py)."""

    # Set when an admin or `create_staff` issues a one-time password: until the person chooses their own,
    # every page sends them to the change-password page (people.middleware).
    must_change_password = models.BooleanField(default=False)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

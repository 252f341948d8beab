from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person who signs in to reviewapp. Their role is the Django group they belong to (see roles.py)."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

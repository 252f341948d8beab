"""Staff and their roles: the user model, role groups with their permissions, sign-in and navigation."""

"""Story activities: comprehension questions after a story, and choice points inside one."""

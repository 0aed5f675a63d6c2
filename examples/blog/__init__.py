"""A small blog whose comments go through the threadguard moderation hook.

``python -m examples.blog`` starts the hook (the shipped model) and the blog on
localhost; see :mod:`examples.blog.app` for the site and :func:`run_demo`.
"""

from examples.blog.app import BlogSettings, CommentStore, create_blog_app, run_demo

__all__ = ["BlogSettings", "CommentStore", "create_blog_app", "run_demo"]

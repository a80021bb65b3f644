"""Headless Meeting Bot: sends bots into Zoom meetings and streams what they hear."""

__version__ = "0.1.0"

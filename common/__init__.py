"""Pieces shared by every task: the error funnel, process running, output."""

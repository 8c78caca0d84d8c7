"""The static leaderboard site builder and the papers' reported reference rows."""

"""The read-along screen: the story's words lit up as they are spoken, and the robot's face."""

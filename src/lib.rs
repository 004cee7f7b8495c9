//! Workspace umbrella

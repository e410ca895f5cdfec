//! Image and audio inputs, prepared exactly as transformers' processors prepare them.

pub mod audio;
pub mod image;

pub use audio::{Audio, LogMel};
pub use image::{ImageProcessor, Resample, ResizeEngine, RgbImage};

"""Tools beside the method, not part of it: datasets of known latent dimension to try
`rank_of` on (`example_data`), and pytorch-fid's Inception weights built offline
(`fid_weights`). They import nothing from the project's other packages."""
